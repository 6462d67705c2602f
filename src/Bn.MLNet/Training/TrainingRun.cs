using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>The fixed inputs of one <see cref="TrainingRun"/>.</summary>
internal sealed record TrainingSetup(
    BatchNormCnnNetwork Network, BatchSource Train, BatchSource? Validation, TrainerOptions Options, TrainingHistory History, TrainingPlan Plan,
    TrainingClock Clock, torch.optim.Optimizer Optimizer, IProgress<TrainingProgress>? Progress, CancellationToken CancellationToken,
    CheckpointStore? Checkpoints, string Identity);

/// <summary>
/// One call of <see cref="Trainer.Train"/> after its checks: the epoch loop, the step loop and what ends them (the plan,
/// divergence, early stopping, the time budget), then the best-epoch and last-finite-state restores; a checkpoint after
/// every epoch and at the end when a checkpoint folder is set. Each step runs in its own dispose scope.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly BatchNormCnnNetwork _network;
    private readonly BatchSource _train;
    private readonly BatchSource? _validation;
    private readonly TrainerOptions _o;
    private readonly TrainingHistory _history;
    private readonly TrainingPlan _plan;
    private readonly TrainingClock _clock;
    private readonly CancellationToken _cancellationToken;
    private readonly torch.optim.Optimizer _optimizer;
    private readonly StepReporter _reporter;
    private BatchAugmenter? _augmenter;
    private bool _augmenterMade;
    private readonly long[] _labels;
    private readonly float[] _targets;
    private TaskLoss? _loss;
    private readonly LastFiniteState _finiteState;
    private readonly EarlyStopping _earlyStopping;
    private readonly WeightAverage? _weightAverage;
    private readonly CheckpointStore? _checkpoints;
    private readonly string _identity;
    private int _lastEpoch, _firstEpoch;
    private double _lastLr, _lastLoss = double.NaN;

    public TrainingRun(TrainingSetup s)
    {
        (_network, _train, _validation, _o, _history, _plan) = (s.Network, s.Train, s.Validation, s.Options, s.History, s.Plan);
        (_clock, _optimizer, _cancellationToken, _checkpoints, _identity) = (s.Clock, s.Optimizer, s.CancellationToken, s.Checkpoints, s.Identity);
        _reporter = new StepReporter(_o, _history, _plan, _clock, _validation, s.Progress, _cancellationToken);
        _labels = new long[_o.BatchSize];
        _targets = new float[_o.BatchSize];
        _finiteState = new LastFiniteState(_network);
        _earlyStopping = new EarlyStopping(_o);
        _weightAverage = _o.WeightAveragingDecay is double decay ? new WeightAverage(_network, decay) : null;
    }

    /// <summary>Optimizer steps done.</summary>
    public long Steps { get; private set; }

    /// <summary>Continues where <paramref name="checkpoint"/> (of this run's identity, not finished) stood.</summary>
    public void Resume(Checkpoint checkpoint)
    {
        CheckpointProgress p = checkpoint.Progress;
        checkpoint.RestoreInto(_network, _optimizer, () => _earlyStopping.Resume(p.BestMetric, p.EpochsWithoutImprovement, _network), _weightAverage?.Shadows);
        if (_weightAverage is not null)
            _weightAverage.Updates = p.WeightAverageUpdates;
        foreach (BFloat16Decision d in p.BFloat16Decisions)
            _network.RestoreBFloat16Decision(d.Layer, d.Shape, d.UseBFloat16);
        (Steps, _firstEpoch, _lastEpoch) = (p.Steps, p.CompletedEpochs, Math.Max(0, p.CompletedEpochs - 1));
    }

    /// <summary>Runs epochs until the plan, divergence, early stopping or the time budget ends training; then restores.</summary>
    public void Run()
    {
        bool ended = _history.StoppedEarly || _history.StoppedByTimeBudget || _history.Divergence is not null;
        for (int epoch = _firstEpoch; !ended && Steps < _plan.Steps; epoch++)
        {
            _lastEpoch = epoch;
            bool goOn = RunEpoch(epoch);
            if (_history.Epochs.Count > 0 && _history.Epochs[^1].Epoch == epoch)
                SaveCheckpoint(epoch + 1, finished: false);
            if (!goOn)
                break;
        }

        ApplyWeightAverage();
        _earlyStopping.RestoreBest(_network, _history);
        if (_weightAverage is not null && _history.RestoredBestWeights)
        {
            _history.UsedWeightAverage = true; // the best epoch's state was captured with the average swapped in
            _history.WeightAverageNote = null;
        }

        KeepLastFiniteState();
        _history.TotalSteps = Steps;
        _history.TrainSeconds = _clock.Elapsed.TotalSeconds;
        SaveCheckpoint(_history.Epochs.Count, finished: true);
    }

    public void Dispose()
    {
        _weightAverage?.Dispose();
        _earlyStopping.Dispose();
        _finiteState.Dispose();
    }

    /// <summary>Writes a checkpoint of the run as it stands (after <paramref name="completedEpochs"/> epochs) when a folder is set.</summary>
    private void SaveCheckpoint(int completedEpochs, bool finished)
    {
        if (_checkpoints is null)
            return;
        var decisions = _network.BFloat16Guards
            .SelectMany(g => g.Value.Decisions.Select(d => new BFloat16Decision(g.Key, d.Key, d.Value))).ToList();
        var progress = new CheckpointProgress(completedEpochs, Steps, _clock.Elapsed.TotalSeconds, finished, _o.Seed!.Value,
            _earlyStopping.BestMetric, _earlyStopping.EpochsWithoutImprovement, _weightAverage?.Updates ?? 0, decisions);
        _history.TotalSteps = Steps;
        var parts = new Checkpoint.Parts(_network, _optimizer, _earlyStopping.BestState, _weightAverage?.Shadows);
        _checkpoints.Save(completedEpochs, stream => Checkpoint.Write(stream, _identity, progress, _history, parts));
    }

    /// <summary>One epoch's steps, then its history entry; returns whether training goes on.</summary>
    private bool RunEpoch(int epoch)
    {
        StartEpoch(epoch);
        var totals = new RunningTotals();
        List<LayerPercentiles> lastPercentiles = new();
        foreach (MiniBatch batch in _train.ReadEpoch(_o.BatchSize, epoch, _o.Shuffle, _cancellationToken))
        {
            _cancellationToken.ThrowIfCancellationRequested();
            if (batch.Count < 2)
            {
                if (batch.Count == 1)
                    _history.DroppedSingleRowBatches++;
                continue;
            }

            if (Steps >= _plan.Steps)
                break;
            if (!RunStep(batch, epoch, totals, ref lastPercentiles))
                return false;
            if (_history.StoppedByTimeBudget)
                break;
        }

        return totals.Images > 0 && FinishEpoch(epoch, totals, lastPercentiles);
    }

    /// <summary>
    /// Training mode (the network keeps frozen convolution stages in eval mode), the epoch's own
    /// random streams for dropout and augmentation, a new log span.
    /// </summary>
    private void StartEpoch(int epoch)
    {
        _network.train();
        int seed = _o.Seed!.Value;
        _network.DropoutRandom.Seed(EpochSeeds.Dropout(seed, epoch));
        _loss ??= new TaskLoss(_network, _o);   // after a resume has restored the label's standardization
        if (!_augmenterMade)
        {
            // Made at the first epoch, after a resume has restored the network: erasing fills with its input mean.
            NetworkArchitecture arch = _network.Architecture;
            _augmenter = BatchAugmenter.Create(_o, arch.InputChannels, arch.InputHeight, arch.InputWidth, _network.InputMean);
            _augmenterMade = true;
        }

        _augmenter?.StartEpoch(EpochSeeds.Augmentation(seed, epoch));
        _reporter.StartEpoch();
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
        NetworkArchitecture a = _network.Architecture;
        int classes = a.Task == NetworkTask.BinaryClassification ? 2 : a.ClassCount;
        for (int i = 0; i < batch.Count; i++)
        {
            int label = batch.Labels[i];
            if (a.Task != NetworkTask.Regression && (uint)label >= (uint)classes)
                throw new ArgumentException($"Label {label} is outside [0, {classes}).", "train");
            _labels[i] = label;
            _targets[i] = batch.Targets[i];
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
        Tensor t = torch.tensor(_targets, new long[] { n }, device: _network.Device);
        _finiteState.Capture(_network, Steps, x);
        Tensor output = percentiles is null ? _network.call(x) : _network.ForwardRecording(x, percentiles, _o.PercentileSampleSize);
        Tensor lossTensor = _loss!.Of(output, y, t);
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
            correct = _loss.Correct(output, y, t);
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
