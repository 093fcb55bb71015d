"""Monitoring: drift references and statistics, monitors over a deployment's windows, alerts."""
