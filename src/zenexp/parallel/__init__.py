"""Where a run runs: the machine (cores, threads, devices) and one job's ranks on several devices."""
