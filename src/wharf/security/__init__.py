"""Security features: vulnerability advisories (and, with the spine, scans and vetting)."""
