using System.Diagnostics;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// One call of <see cref="Trainer.Train"/> after its checks: the epoch loop, the step loop and what ends them (the plan,
/// divergence, early stopping, the time budget), then the best-epoch and last-finite-state restores. Each step runs in its
/// own dispose scope.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly BatchNormCnnNetwork _network;
    private readonly BatchSource _train;
    private readonly BatchSource? _validation;
    private readonly TrainerOptions _o;
    private readonly TrainingHistory _history;
    private readonly TrainingPlan _plan;
    private readonly Stopwatch _clock;
    private readonly CancellationToken _cancellationToken;
    private readonly torch.optim.Optimizer _optimizer;
    private readonly StepReporter _reporter;
    private readonly BatchAugmenter? _augmenter;
    private readonly long[] _labels;
    private readonly LastFiniteState _finiteState;
    private readonly EarlyStopping _earlyStopping;
    private readonly WeightAverage? _weightAverage;
    private int _lastEpoch;
    private double _lastLr, _lastLoss = double.NaN;

    public TrainingRun(
        BatchNormCnnNetwork network, BatchSource train, BatchSource? validation, TrainerOptions options, TrainingHistory history, TrainingPlan plan,
        Stopwatch clock, torch.optim.Optimizer optimizer, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        (_network, _train, _validation, _o, _history, _plan) = (network, train, validation, options, history, plan);
        (_clock, _optimizer, _cancellationToken) = (clock, optimizer, cancellationToken);
        NetworkArchitecture arch = network.Architecture;
        _reporter = new StepReporter(options, history, plan, clock, validation, progress, cancellationToken);
        _augmenter = BatchAugmenter.Create(options, arch.InputChannels, arch.InputHeight, arch.InputWidth, network.InputMean);
        _labels = new long[options.BatchSize];
        _finiteState = new LastFiniteState(network);
        _earlyStopping = new EarlyStopping(options);
        _weightAverage = options.WeightAveragingDecay is double decay ? new WeightAverage(network, decay) : null;
    }

    /// <summary>Optimizer steps done.</summary>
    public long Steps { get; private set; }

    /// <summary>Runs epochs until the plan, divergence, early stopping or the time budget ends training; then restores.</summary>
    public void Run()
    {
        for (int epoch = 0; Steps < _plan.Steps; epoch++)
        {
            _lastEpoch = epoch;
            if (!RunEpoch(epoch))
            {
                break;
            }
        }

        ApplyWeightAverage();
        _earlyStopping.RestoreBest(_network, _history);
        if (_weightAverage is not null && _history.RestoredBestWeights)
        {
            _history.UsedWeightAverage = true; // the best epoch's state was captured with the average swapped in
            _history.WeightAverageNote = null;
        }

        KeepLastFiniteState();
    }

    public void Dispose()
    {
        _weightAverage?.Dispose();
        _earlyStopping.Dispose();
        _finiteState.Dispose();
    }

    /// <summary>One epoch's steps, then its history entry; returns whether training goes on.</summary>
    private bool RunEpoch(int epoch)
    {
        _network.train();
        var totals = new RunningTotals();
        _reporter.StartEpoch();
        List<LayerPercentiles> lastPercentiles = new();
        foreach (MiniBatch batch in _train.ReadEpoch(_o.BatchSize, epoch, _o.Shuffle, _cancellationToken))
        {
            _cancellationToken.ThrowIfCancellationRequested();
            if (batch.Count < 2)
            {
                if (batch.Count == 1)
                {
                    _history.DroppedSingleRowBatches++;
                }

                continue;
            }

            if (Steps >= _plan.Steps)
            {
                break;
            }

            if (!RunStep(batch, epoch, totals, ref lastPercentiles))
            {
                return false;
            }

            if (_history.StoppedByTimeBudget)
            {
                break;
            }
        }

        return totals.Images > 0 && FinishEpoch(epoch, totals, lastPercentiles);
    }

    /// <summary>One optimizer step on <paramref name="batch"/> and its bookkeeping; false when the loss was not finite.</summary>
    private bool RunStep(MiniBatch batch, int epoch, RunningTotals epochTotals, ref List<LayerPercentiles> lastPercentiles)
    {
        int n = batch.Count;
        float[] features = PrepareBatch(batch);
        double lr = SetLearningRate();
        bool logged = _reporter.IsLogged(Steps);
        List<LayerPercentiles>? percentiles = logged && _o.RecordPercentiles ? new List<LayerPercentiles>() : null;
        if (!Optimize(features, n, percentiles, out float loss, out long correct))
        {
            _history.Divergence = new DivergenceInfo { Epoch = epoch, Step = Steps, LearningRate = lr, Loss = loss };
            return false;
        }

        Steps++;
        _lastLoss = loss;
        epochTotals.Add(loss, n, correct);
        if (percentiles is not null)
        {
            lastPercentiles = percentiles;
        }

        _reporter.AfterStep(_network, epoch, Steps, lr, loss, n, correct, logged, percentiles);
        if (_o.TimeBudget is TimeSpan limit && _clock.Elapsed >= limit && Steps < _plan.Steps)
        {
            _history.StoppedByTimeBudget = true;
        }

        _reporter.ReportStep(epoch, Steps, lr, epochTotals);
        return true;
    }

    /// <summary>Checks and copies the labels; augments the features when asked. Returns the features to train on.</summary>
    private float[] PrepareBatch(MiniBatch batch)
    {
        int classes = _network.Architecture.ClassCount;
        for (int i = 0; i < batch.Count; i++)
        {
            int label = batch.Labels[i];
            if ((uint)label >= (uint)classes)
            {
                throw new ArgumentException($"Label {label} is outside [0, {classes}).", "train");
            }

            _labels[i] = label;
        }

        return _augmenter is null ? batch.Features : _augmenter.Apply(batch.Features, batch.Count);
    }

    /// <summary>The schedule's learning rate for the coming step (the time budget can move it on), set on every parameter group.</summary>
    private double SetLearningRate()
    {
        double fraction = LearningRateSchedule.FractionDone(Steps, _plan.Steps, _clock.Elapsed.TotalSeconds, _o.TimeBudget?.TotalSeconds);
        double lr = LearningRateSchedule.AtFraction(_o, fraction, Steps, _plan.Steps, _plan.StepsPerEpoch);
        foreach (torch.optim.ILearningRateController group in _optimizer.ParamGroups)
        {
            group.LearningRate = lr;
        }

        _lastLr = lr;
        return lr;
    }

    /// <summary>
    /// Forward, loss, backward and update in one dispose scope, after capturing the state the step starts from; false
    /// (and no update) when the loss is NaN or infinite.
    /// </summary>
    private bool Optimize(float[] features, int n, List<LayerPercentiles>? percentiles, out float loss, out long correct)
    {
        NetworkArchitecture arch = _network.Architecture;
        using DisposeScope scope = torch.NewDisposeScope();
        Tensor x = torch.tensor(features, new long[] { n, arch.InputChannels, arch.InputHeight, arch.InputWidth }, device: _network.Device);
        Tensor y = torch.tensor(_labels, new long[] { n }, device: _network.Device);
        _finiteState.Capture(_network, Steps, x);
        Tensor logits = percentiles is null ? _network.call(x) : _network.ForwardRecording(x, percentiles, _o.PercentileSampleSize);
        Tensor lossTensor = nn.functional.cross_entropy(logits, y, label_smoothing: _o.LabelSmoothing);
        loss = lossTensor.item<float>();
        correct = 0;
        if (!float.IsFinite(loss))
        {
            return false;
        }

        _finiteState.Confirm();
        _optimizer.zero_grad();
        lossTensor.backward();
        _optimizer.step();
        _weightAverage?.Update();
        using (torch.no_grad())
        {
            correct = logits.argmax(1).eq(y).sum().item<long>();
        }

        return true;
    }

    /// <summary>The epoch's history entry, its validation and early stopping; returns whether training goes on.</summary>
    private bool FinishEpoch(int epoch, RunningTotals totals, List<LayerPercentiles> lastPercentiles)
    {
        var entry = new HistoryEntry
        {
            Epoch = epoch,
            Step = Steps,
            TrainLoss = totals.MeanLoss,
            TrainAccuracy = totals.Accuracy,
            LearningRate = _lastLr,
            ImagesPerSecond = totals.ImagesPerSecond(totals.Seconds),
            PercentilesData = lastPercentiles,
        };

        bool stop = false;
        if (_validation is not null)
        {
            stop = Validate(epoch, entry);
        }

        entry.ElapsedSeconds = _clock.Elapsed.TotalSeconds;
        _history.EpochsData.Add(entry);
        _reporter.ReportEpoch(entry);
        if (stop)
        {
            _history.StoppedEarly = true;
            return false;
        }

        return !_history.StoppedByTimeBudget;
    }

    /// <summary>
    /// Scores the validation source for the epoch's entry and follows early stopping; with weight averaging the averaged
    /// state is swapped in for both (so a best-epoch snapshot holds it), then swapped out. Returns whether to stop.
    /// </summary>
    private bool Validate(int epoch, HistoryEntry entry)
    {
        _weightAverage?.Swap();
        try
        {
            EvaluationResult v = Evaluation.Evaluate(_network, _validation!, _o.EvaluationBatchSize, _cancellationToken);
            entry.ValidationLoss = v.Loss;
            entry.ValidationAccuracy = v.Accuracy;
            return _earlyStopping.PatienceExhausted(epoch, v, _network, _history) && Steps < _plan.Steps;
        }
        finally
        {
            _weightAverage?.Swap();
        }
    }

    /// <summary>
    /// After the loop, with weight averaging: writes the average into the network unless training diverged (then the
    /// last finite state is restored below) or the average is not finite; records which in the history.
    /// </summary>
    private void ApplyWeightAverage()
    {
        if (_weightAverage is null)
        {
            return;
        }

        if (_history.Divergence is not null)
        {
            _history.WeightAverageNote = "training diverged; the average is not used";
            return;
        }

        _weightAverage.TryApply(_history);
    }

    /// <summary>
    /// After the loop: when training diverged, or the final update left NaN or infinite weights or statistics (or eval-mode
    /// scores of the last probed rows), records it and writes back the last finite state, unless the restored best
    /// validation epoch is finite.
    /// </summary>
    private void KeepLastFiniteState()
    {
        List<string> nonFinite = StateSnapshot.NonFiniteTensors(_network);
        if (nonFinite.Count == 0 && (_history.Divergence is null || _history.RestoredBestWeights) && _finiteState.CurrentScoresFinite(_network))
        {
            return;
        }

        _history.Divergence ??= new DivergenceInfo { Epoch = _lastEpoch, Step = Steps, LearningRate = _lastLr, Loss = _lastLoss, NonFiniteState = true };
        _history.Divergence.NonFiniteTensorsData = nonFinite;
        _history.RestoredBestWeights = false; // when it was restored, the best epoch's state is not finite either
        if (_history.UsedWeightAverage)
        {
            _history.UsedWeightAverage = false;
            _history.WeightAverageNote = "the averaged state was not finite (weights, statistics or eval-mode scores); the last finite raw state is restored";
        }

        _history.Divergence.RestoredStep = _finiteState.Restore(_network);
    }
}
