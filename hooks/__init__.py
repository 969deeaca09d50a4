"""Python used by the template: Jinja filters for validation and naming, and tasks."""
