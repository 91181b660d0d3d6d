ALTER TABLE `live_tickets` ADD `session_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `live_tickets` ADD `session_expires_at` integer DEFAULT 0 NOT NULL;