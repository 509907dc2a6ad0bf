"""`coengage lm eval`: the paper's evaluation of frozen tweet embeddings (TwHIN-BERT §3.2).

One concern per module; every head and metric is a pure function of embedding matrices, so it
can be tested (and reused) without a language model:

* :mod:`lm.eval.metrics`    -- ranks with ties, MRR, HITS@k / HR@k, mean percentile rank, macro-F1
* :mod:`lm.eval.twotower`   -- the engagement task: two-tower model, negatives ∝ frequency^0.75,
                               1-in-1,000 ranking, dev-split model selection, median over seeds
* :mod:`lm.eval.classify`   -- logistic regression on frozen embeddings -> macro-F1
* :mod:`lm.eval.retrieval`  -- retrieval of held-out socially similar pairs among all tweets
* :mod:`lm.eval.baselines`  -- TF-IDF (+ SVD) and random tweet embeddings
* :mod:`lm.eval.protocol`   -- what is evaluated: tweets, splits, users, pairs, read from the artifacts
* :mod:`lm.eval.config`     -- :class:`EvalConfig`, each field explained
* :mod:`lm.eval.run`        -- orchestration: model spec -> features -> tasks -> metrics.json
* :mod:`lm.eval.report`     -- markdown tables of metrics

Nothing here imports dgl (lm/ never does); torch and scikit-learn are imported on use.
"""
