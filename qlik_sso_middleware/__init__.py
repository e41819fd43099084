"""qlik-sso-middleware."""
