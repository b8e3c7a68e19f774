"""Export a Werk model to the formats its field uses (Hugging Face folders, GGUF), and import back."""
