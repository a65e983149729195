"""Bundled data (demo images, demo model bundle, icon); a wheel installs it as cxr_review_resources."""
