"""Tests that serve the app, start processes or use SQLite, PostgreSQL, Redis or Chromium."""
