"""``feedback.text.html_to_text``: the HTML bodies of Intercom (and Discourse ``cooked``)."""

import pytest

from sluiceway.feedback.text import html_to_text


@pytest.mark.parametrize("html, text", [
    (None, None),
    ("plain words ", "plain words"),
    ("<p>The export button does nothing</p>", "The export button does nothing"),
    ("<p>One</p><p>Two &amp; three</p>", "One\n\nTwo & three"),
    ("line<br>break<br/>again", "line\nbreak\nagain"),
    ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
    ("<p>x <b>bold</b>\n   spaced&nbsp;out</p>", "x bold spaced out"),
    ("<style>p{}</style><script>alert(1)</script><p>kept</p>", "kept"),
    ("<p>unclosed <i>tags", "unclosed tags"),
    ("a &lt;b&gt; &#39;c&#39; &unknown;", "a <b> 'c' &unknown;"),
    ("<pre>keep\n  lines</pre><p>x</p>", "keep\nlines\n\nx"),  # (indentation is not kept)
])
def test_html_to_text(html, text):
    assert html_to_text(html) == text
