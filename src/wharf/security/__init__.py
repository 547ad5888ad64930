"""Vetting: analyzers that look at every package version (vulnerabilities, licences, malware, typosquatting)."""
