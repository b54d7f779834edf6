"""The Streamlit canvas and its HTTP client; speaks only HTTP to the API, imports no model code."""
