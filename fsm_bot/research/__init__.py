"""Research at scale: backtests cut into independent chunks, parameter sweeps, walk-forward, data download;
run on this machine's cores or on a Dask cluster."""
