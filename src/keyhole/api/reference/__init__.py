"""The API reference: the OpenAPI documents and the page that renders them."""
