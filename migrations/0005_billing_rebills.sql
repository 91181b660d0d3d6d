CREATE TABLE `billing_rebills` (
	`date` text NOT NULL,
	`client_id` text NOT NULL,
	`marked_at` integer NOT NULL,
	PRIMARY KEY(`date`, `client_id`)
);
