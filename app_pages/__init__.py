"""The pages of the Streamlit app (see app.py), and what they share."""
