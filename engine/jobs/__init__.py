"""Batch jobs over paygrid's records, in the parts that need no cluster: planning a job's
partitions, each partition's bounded query, merging partial aggregates, writing the outputs.
The Ray drivers that run them live in `actors/jobs/`."""
