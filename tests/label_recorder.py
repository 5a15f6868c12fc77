# Inserted before a notebook's first cell by tests/test_notebooks.py: records the
# titles, axis labels and legend entries of every figure the notebook shows.
import matplotlib.backend_bases as _backend_bases

_labels_shown: list[str] = []
_print_figure = _backend_bases.FigureCanvasBase.print_figure


def _record_labels(self, *args, **kwargs):
    figure = self.figure
    texts = [figure._suptitle] if figure._suptitle is not None else []
    for axes in figure.axes:
        texts += [axes.title, axes.xaxis.label, axes.yaxis.label]
        if axes.get_legend() is not None:
            texts += axes.get_legend().get_texts()
    _labels_shown.extend(text.get_text() for text in texts if text.get_text())
    return _print_figure(self, *args, **kwargs)


_backend_bases.FigureCanvasBase.print_figure = _record_labels
