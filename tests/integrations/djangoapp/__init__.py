"""A minimal Django app for the integration tests: a custom user model and login/logout views."""
