"""How GoBiller keeps its data: database, models, migrations, money, queries.

Never imports Textual or Rich.
"""
