"""Running a Flask app factory under real gunicorn, shared by the webhook and the exporter."""
