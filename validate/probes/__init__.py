"""Probes: the mean-field and random-matrix predictions checked layer by layer on real torch networks (issue 12).

- :mod:`validate.probes.signal`: ``signal_fc``, ``signal_cnn``, ``signal_width_sweep`` (q^l, c^l vs the mean-field maps)
- :mod:`validate.probes.spectra`: ``network_spectrum``, ``spectra`` (Jacobian spectra vs ``rmt.jacobian_spectrum``)
- :mod:`validate.probes.gradnorm`: ``block_gradient_ratios``, ``train_gradnorm``, ``gradnorm`` (papers 000, 003)
- :mod:`validate.probes.modulation`: ``Modulation`` (paper 000's backward-error modulation)
- :mod:`validate.probes.nets`: plain Conv-BN-ReLU nets, ResNets, ProcResNets
- :mod:`validate.probes.speed`: ``speed`` (paper 002, Fig. 5)

The diagnostic for any model is :func:`validate.diagnose` (module :mod:`validate.diagnostic`).
"""
