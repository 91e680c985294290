"""Data files shipped with the package (the pinned Airflow's option catalog)."""
