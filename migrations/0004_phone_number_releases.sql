CREATE TABLE `phone_number_releases` (
	`phone_number_id` text NOT NULL,
	`client_id` text NOT NULL,
	`released_at` integer NOT NULL,
	PRIMARY KEY(`phone_number_id`, `released_at`),
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE no action
);
