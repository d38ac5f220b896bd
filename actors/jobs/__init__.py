"""Ray drivers of paygrid's batch jobs; the work itself is in `engine/jobs/`."""
