"""What the business does: plain functions over plain values, raising domain errors.

Never imports Textual or Rich.
"""
