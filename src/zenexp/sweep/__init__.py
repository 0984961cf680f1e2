"""Sweeps: grid and Optuna searches, their ledger and job records, and comparing their runs."""
