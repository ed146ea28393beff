"""Prebuilt validated images: push/pull through an OCI registry with signed attestations, and keys."""
