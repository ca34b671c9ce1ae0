//! portcullis-store: under construction.
