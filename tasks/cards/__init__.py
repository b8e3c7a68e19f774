"""Documentation generated from what the stages record, never typed by hand: the dataset card and
its Croissant description, the model card, and the EU AI Act training-content summary."""
