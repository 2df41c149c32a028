"""What people read: the terminal text, the HTML report, its figures and tables.

* ``text``: the terminal summary; ``tables``: tables that never cut a number;
* ``report`` and ``report_html``: one self-contained HTML file; ``plots``, ``run_figures`` and
  ``sweep_figures``: its figures.

May import anything in ``analysis`` but ``calibration`` (it renders ``analyze``'s records).
"""
