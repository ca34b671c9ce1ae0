//! portcullis-audit: under construction.
