CREATE TABLE `cron_job_runs` (
	`job` text PRIMARY KEY NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`failed` integer DEFAULT false NOT NULL,
	`error` text,
	`last_ok_at` integer
);
