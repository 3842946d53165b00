"""The machinery around the chapter's code; its public names are also ``d2l_nli.<name>``.

* ``runtime``: what importing does before MXNet loads, and when training starts;
* ``devices``: GPUs MXNet can use, and why one cannot be;
* ``files``: the one atomic-write helper (temporary name, then rename);
* ``hub``: the data archives, their mirrors and checksums;
* ``checkpoint``: model folders, and the one place that turns load errors into messages;
* ``resume`` and ``optstate``: the whole training state, for resuming;
* ``loop``: the scaffolding the training loops share (:class:`TrainingRun`);
* ``distributed`` and ``launch``: training across machines;
* ``notebook_setup``: a notebook's first cell (its profile, its data);
* ``steptimes``, ``budget``, ``doctor``: minutes per notebook on this machine,
  a time budget, and ``python -m d2l_nli doctor``;
* ``cli``: ``python -m d2l_nli``.
"""
