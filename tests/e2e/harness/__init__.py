"""The end-to-end harness: rendered manifests run as real Airflow processes on one machine."""
