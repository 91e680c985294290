"""Programs that run inside the Airflow image (shipped to pods in a ConfigMap). They import nothing
from this package: a pod has only the image, and their input arrives as JSON data in env."""
