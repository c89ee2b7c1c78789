"""fastgw's compiled core: parser, router, balancers, buckets, protocols (see DESIGN.md)."""
