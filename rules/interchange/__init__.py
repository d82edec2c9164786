"""The interchange document of PRODUCT.md §5: schema, export, checking and import."""
