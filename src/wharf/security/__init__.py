"""Vetting: scan analyzers (licence, malware, typosquatting) and the security overview."""
