"""The only code that talks SQL, HTTP (Breeze), Redis or does encryption."""
