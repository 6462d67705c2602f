using System.Diagnostics;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// The mini-batch training engine for a <see cref="BnCnn"/> (the paper's stochastic gradient procedure, with the usual
/// modern optimizers and schedules).
/// <para>
/// <b>Data.</b> Batches stream from an <see cref="IBatchSource"/>: one reused buffer per batch becomes one tensor; each
/// batch runs inside its own dispose scope. Before training one streaming pass counts the rows and (by default) computes
/// the per-channel input mean and standard deviation, which are stored into the network.
/// </para>
/// <para>
/// <b>Batches of one row are dropped.</b> When the row count leaves a final batch of exactly one row, that batch is skipped
/// for the epoch (counted in <see cref="TrainingHistory.DroppedSingleRowBatches"/>): batch statistics of one row are
/// meaningless (zero variance) and native BatchNorm1d refuses them, so such a batch never reaches a normalization layer in
/// training mode. With per-epoch shuffling a different row is left out each epoch.
/// </para>
/// <para>
/// <b>Determinism.</b> <c>torch.manual_seed(Seed)</c> is called at the start (dropout), augmentation draws from a
/// generator seeded with <see cref="TrainerOptions.Seed"/>, and row order comes from the source's seed and the epoch, so
/// the same network initialization, options and data give the same weights when run with one thread.
/// </para>
/// <para>
/// <b>Ending.</b> Cancellation throws <see cref="OperationCanceledException"/>. A NaN or infinite loss stops training
/// without an update for that step; this, or a final network with NaN or infinite weights, running statistics or
/// eval-mode scores, is recorded in <see cref="TrainingHistory.Divergence"/> and nothing is thrown. The network then gets
/// back the last state whose weights, BN running statistics, eval-mode scores and training loss were all finite
/// (<see cref="DivergenceInfo.RestoredStep"/>), because the diverged forward pass has already updated the running
/// statistics and the update before it may already have written non-finite weights. With a validation source the best
/// epoch's weights are restored (unless disabled), also after divergence, when they are finite. The network is left in
/// eval mode.
/// </para>
/// <para>
/// <b>Threads.</b> <see cref="TrainerOptions.Threads"/> is applied with <c>torch.set_num_threads</c> for the run only;
/// the process's previous libtorch thread count is put back when <see cref="Train"/> returns or throws.
/// </para>
/// </summary>
public sealed class Trainer
{
    /// <summary>Creates a trainer with a copy of <paramref name="options"/> (defaults when null).</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public Trainer(TrainerOptions? options = null)
    {
        Options = (options ?? new TrainerOptions()).Clone();
        Options.Validate();
    }

    /// <summary>The settings (a private copy; changes after construction are validated again by <see cref="Train"/>).</summary>
    public TrainerOptions Options { get; }

    /// <summary>Trains <paramref name="network"/> in place on <paramref name="train"/>.</summary>
    /// <param name="network">The network; its initialization is the caller's (seed with <c>torch.manual_seed</c> before building it).</param>
    /// <param name="train">Training rows; their length must equal the architecture's C×H×W.</param>
    /// <param name="validation">Optional validation rows, evaluated after every epoch (eval mode, no_grad).</param>
    /// <param name="progress">Optional progress receiver.</param>
    /// <param name="cancellationToken">Stops training with <see cref="OperationCanceledException"/>.</param>
    /// <returns>What happened, epoch by epoch and every K steps.</returns>
    /// <exception cref="ArgumentException">The data do not match the network, a label is out of range, there are fewer than 2
    /// training rows, or the validation source has none.</exception>
    /// <exception cref="InvalidDataException">A training feature value is NaN or infinite (found by the pass before training), or a
    /// <see cref="DataViewBatchSource"/> (training or validation, both read before training) meets one; the message names the row and the value.</exception>
    public TrainingHistory Train(
        BnCnn network,
        IBatchSource train,
        IBatchSource? validation = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(train);
        TrainerOptions o = Options;
        o.Validate();
        NetworkArchitecture arch = network.Architecture;
        if (train.FeatureLength != arch.InputLength)
        {
            throw new ArgumentException($"Training rows have {train.FeatureLength} values; the network expects {arch.InputLength} ({arch.InputChannels}×{arch.InputHeight}×{arch.InputWidth}).", nameof(train));
        }

        if (validation is not null && validation.FeatureLength != arch.InputLength)
        {
            throw new ArgumentException($"Validation rows have {validation.FeatureLength} values; the network expects {arch.InputLength}.", nameof(validation));
        }

        if (o.RandomCropPadding >= Math.Min(arch.InputHeight, arch.InputWidth))
        {
            throw new ArgumentException($"TrainerOptions.RandomCropPadding {o.RandomCropPadding} must be smaller than the image.", nameof(TrainerOptions.RandomCropPadding));
        }

        using TorchThreadScope threads = TorchThreadScope.Set(o.Threads ?? Environment.ProcessorCount);
        torch.manual_seed(o.Seed);
        var clock = Stopwatch.StartNew();
        var history = new TrainingHistory { Layers = network.ProbedLayers.ToList() };

        long rows;
        if (o.ComputeInputStandardization)
        {
            InputStatistics stats = InputStandardization.Compute(train, arch.InputChannels, cancellationToken: cancellationToken);
            network.SetInputStandardization(stats.Mean, stats.Std);
            rows = stats.Rows;
        }
        else
        {
            rows = CountRows(train, cancellationToken);
        }

        if (rows < 2)
        {
            throw new ArgumentException($"Training needs at least 2 rows; the source has {rows}.", nameof(train));
        }

        if (validation is not null && CountRows(validation, cancellationToken) == 0)
        {
            throw new ArgumentException("The validation source has no rows; pass rows, or no validation source.", nameof(validation));
        }

        history.InputMean = network.InputMean;
        history.InputStd = network.InputStd;
        history.TrainingRows = rows;

        int batchSize = o.BatchSize;
        long stepsPerEpoch = (rows / batchSize) + (rows % batchSize >= 2 ? 1 : 0);
        long plannedSteps = o.MaxSteps ?? (o.Epochs * stepsPerEpoch);
        int plannedEpochs = (int)((plannedSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        history.PlannedSteps = plannedSteps;

        int c = arch.InputChannels, h = arch.InputHeight, w = arch.InputWidth, classes = arch.ClassCount;
        bool augment = o.RandomCropPadding > 0 || o.HorizontalFlip;
        var augmentRandom = new Random(o.Seed);
        float[]? augmented = augment ? new float[batchSize * arch.InputLength] : null;
        var labels = new long[batchSize];

        Dictionary<string, Tensor>? best = null;
        double bestMetric = double.NaN;
        int epochsWithoutImprovement = 0;
        long step = 0;
        int lastEpoch = 0;
        double lastLr = 0, lastLoss = double.NaN;

        using torch.optim.Optimizer optimizer = CreateOptimizer(network, o);
        using var finiteState = new LastFiniteState(network);
        try
        {
            for (int epoch = 0; step < plannedSteps; epoch++)
            {
                lastEpoch = epoch;
                network.train();
                double epochLoss = 0;
                long epochCorrect = 0, epochImages = 0;
                var epochClock = Stopwatch.StartNew();
                double spanLoss = 0;
                long spanCorrect = 0, spanImages = 0, spanSteps = 0;
                var spanClock = Stopwatch.StartNew();
                List<LayerPercentiles> lastPercentiles = new();
                double lr = 0;
                bool diverged = false;

                foreach (MiniBatch batch in train.ReadEpoch(batchSize, epoch, o.Shuffle, cancellationToken))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = batch.Count;
                    if (n < 2)
                    {
                        if (n == 1)
                        {
                            history.DroppedSingleRowBatches++;
                        }

                        continue;
                    }

                    if (step >= plannedSteps)
                    {
                        break;
                    }

                    for (int i = 0; i < n; i++)
                    {
                        int label = batch.Labels[i];
                        if ((uint)label >= (uint)classes)
                        {
                            throw new ArgumentException($"Label {label} is outside [0, {classes}).", nameof(train));
                        }

                        labels[i] = label;
                    }

                    float[] features = batch.Features;
                    if (augmented is not null)
                    {
                        Augment(features, augmented, n, c, h, w, o.RandomCropPadding, o.HorizontalFlip, augmentRandom);
                        features = augmented;
                    }

                    double fraction = (double)step / plannedSteps;
                    if (o.TimeBudgetSeconds is double budget)
                    {
                        fraction = Math.Max(fraction, clock.Elapsed.TotalSeconds / budget);
                    }

                    lr = LearningRateSchedule.AtFraction(o, fraction, step, plannedSteps, stepsPerEpoch);
                    foreach (torch.optim.ILearningRateController group in optimizer.ParamGroups)
                    {
                        group.LearningRate = lr;
                    }

                    lastLr = lr;
                    bool log = step % o.LogEverySteps == 0;
                    List<LayerPercentiles>? percentiles = log && o.RecordPercentiles ? new List<LayerPercentiles>() : null;
                    float lossValue;
                    long correct;
                    using (DisposeScope scope = torch.NewDisposeScope())
                    {
                        Tensor x = torch.tensor(features, new long[] { n, c, h, w });
                        Tensor y = torch.tensor(labels, new long[] { n });
                        finiteState.Capture(network, step, x);
                        Tensor logits = percentiles is null ? network.call(x) : network.ForwardRecording(x, percentiles, o.PercentileSampleSize);
                        Tensor loss = nn.functional.cross_entropy(logits, y, label_smoothing: o.LabelSmoothing);
                        lossValue = loss.item<float>();
                        if (!float.IsFinite(lossValue))
                        {
                            history.Divergence = new DivergenceInfo { Epoch = epoch, Step = step, LearningRate = lr, Loss = lossValue };
                            diverged = true;
                            break;
                        }

                        finiteState.Confirm();
                        optimizer.zero_grad();
                        loss.backward();
                        optimizer.step();
                        using (torch.no_grad())
                        {
                            correct = logits.argmax(1).eq(y).sum().item<long>();
                        }
                    }

                    step++;
                    lastLoss = lossValue;
                    epochLoss += lossValue * n;
                    epochCorrect += correct;
                    epochImages += n;
                    spanLoss += lossValue * n;
                    spanCorrect += correct;
                    spanImages += n;
                    spanSteps++;
                    if (percentiles is not null)
                    {
                        lastPercentiles = percentiles;
                    }

                    HistoryEntry? stepEntry = null;
                    if (log)
                    {
                        double spanSeconds = spanClock.Elapsed.TotalSeconds;
                        stepEntry = new HistoryEntry
                        {
                            Epoch = epoch,
                            Step = step,
                            TrainLoss = spanLoss / spanImages,
                            TrainAccuracy = (double)spanCorrect / spanImages,
                            LearningRate = lr,
                            ElapsedSeconds = clock.Elapsed.TotalSeconds,
                            ImagesPerSecond = spanSeconds > 0 ? spanImages / spanSeconds : 0,
                            Percentiles = percentiles ?? new List<LayerPercentiles>(),
                        };
                        history.Steps.Add(stepEntry);
                        spanLoss = 0;
                        spanCorrect = spanImages = spanSteps = 0;
                        spanClock.Restart();
                    }

                    if (validation is not null && o.ValidationEverySteps is int every && step % every == 0)
                    {
                        if (stepEntry is null)
                        {
                            stepEntry = new HistoryEntry { Epoch = epoch, Step = step, TrainLoss = double.NaN, TrainAccuracy = double.NaN, LearningRate = lr };
                            history.Steps.Add(stepEntry);
                        }

                        EvaluationResult v = Evaluation.Evaluate(network, validation, o.EvaluationBatchSize, cancellationToken);
                        stepEntry.ValidationLoss = v.Loss;
                        stepEntry.ValidationAccuracy = v.Accuracy;
                        stepEntry.ElapsedSeconds = clock.Elapsed.TotalSeconds;
                    }

                    if (o.TimeBudgetSeconds is double limit && clock.Elapsed.TotalSeconds >= limit && step < plannedSteps)
                    {
                        history.StoppedByTimeBudget = true;
                    }

                    if (progress is not null && step % o.ProgressEverySteps == 0)
                    {
                        progress.Report(new TrainingProgress(epoch, plannedEpochs, step, plannedSteps, epochLoss / epochImages,
                            (double)epochCorrect / epochImages, epochImages / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds), lr,
                            clock.Elapsed.TotalSeconds, false, null));
                    }

                    if (history.StoppedByTimeBudget)
                    {
                        break;
                    }
                }

                if (diverged)
                {
                    break;
                }

                if (epochImages == 0)
                {
                    break;
                }

                double trainSeconds = epochClock.Elapsed.TotalSeconds;
                var entry = new HistoryEntry
                {
                    Epoch = epoch,
                    Step = step,
                    TrainLoss = epochLoss / epochImages,
                    TrainAccuracy = (double)epochCorrect / epochImages,
                    LearningRate = lr,
                    ImagesPerSecond = trainSeconds > 0 ? epochImages / trainSeconds : 0,
                    Percentiles = lastPercentiles,
                };

                bool stop = false;
                if (validation is not null)
                {
                    EvaluationResult v = Evaluation.Evaluate(network, validation, o.EvaluationBatchSize, cancellationToken);
                    entry.ValidationLoss = v.Loss;
                    entry.ValidationAccuracy = v.Accuracy;
                    double metric = o.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy ? v.Accuracy : -v.Loss;
                    if (double.IsNaN(bestMetric) || metric > bestMetric)
                    {
                        bestMetric = metric;
                        history.BestEpoch = epoch;
                        epochsWithoutImprovement = 0;
                        if (o.RestoreBestWeights)
                        {
                            DisposeAll(best);
                            best = Snapshot(network);
                        }
                    }
                    else
                    {
                        epochsWithoutImprovement++;
                        if (o.EarlyStoppingPatience is int patience && epochsWithoutImprovement >= patience)
                        {
                            stop = step < plannedSteps;
                        }
                    }
                }

                entry.ElapsedSeconds = clock.Elapsed.TotalSeconds;
                history.Epochs.Add(entry);
                progress?.Report(new TrainingProgress(epoch, plannedEpochs, step, plannedSteps, entry.TrainLoss, entry.TrainAccuracy,
                    entry.ImagesPerSecond, lr, entry.ElapsedSeconds, true, entry.ValidationAccuracy));

                if (stop)
                {
                    history.StoppedEarly = true;
                    break;
                }

                if (history.StoppedByTimeBudget)
                {
                    break;
                }
            }

            if (best is not null && history.BestEpoch is int bestEpoch && (history.Epochs.Count == 0 || history.Epochs[^1].Epoch != bestEpoch || history.Diverged))
            {
                Restore(network, best);
                history.RestoredBestWeights = true;
            }

            KeepLastFiniteState(network, history, finiteState, lastEpoch, step, lastLr, lastLoss);
        }
        finally
        {
            DisposeAll(best);
        }

        network.eval();
        history.TotalSteps = step;
        history.TrainSeconds = clock.Elapsed.TotalSeconds;
        return history;
    }

    /// <summary>
    /// After the loop: when training diverged, or the final update left NaN or infinite weights or statistics (or eval-mode
    /// scores of the last probed rows), records it and writes back the last finite state, unless the restored best
    /// validation epoch is finite.
    /// </summary>
    private static void KeepLastFiniteState(BnCnn network, TrainingHistory history, LastFiniteState finiteState, int epoch, long step, double lr, double loss)
    {
        List<string> nonFinite = StateSnapshot.NonFiniteTensors(network);
        if (nonFinite.Count == 0 && (history.Divergence is null || history.RestoredBestWeights) && finiteState.CurrentScoresFinite(network))
        {
            return;
        }

        history.Divergence ??= new DivergenceInfo { Epoch = epoch, Step = step, LearningRate = lr, Loss = loss, NonFiniteState = true };
        history.Divergence.NonFiniteTensors = nonFinite;
        history.RestoredBestWeights = false; // when it was restored, the best epoch's state is not finite either
        history.Divergence.RestoredStep = finiteState.Restore(network);
    }

    private static torch.optim.Optimizer CreateOptimizer(BnCnn network, TrainerOptions o)
    {
        double lr = o.LearningRate * o.LearningRateMultiplier;
        return o.Optimizer switch
        {
            OptimizerKind.Sgd => torch.optim.SGD(network.parameters(), lr, o.Momentum, 0, o.WeightDecay, o.Nesterov && o.Momentum > 0),
            OptimizerKind.Adam => torch.optim.Adam(network.parameters(), lr, o.Beta1, o.Beta2, 1e-8, o.WeightDecay),
            OptimizerKind.AdamW => torch.optim.AdamW(network.parameters(), lr, o.Beta1, o.Beta2, 1e-8, o.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(o), o.Optimizer, "Unknown optimizer."),
        };
    }

    private static long CountRows(IBatchSource source, CancellationToken cancellationToken)
    {
        long rows = 0;
        foreach (MiniBatch batch in source.ReadEpoch(1000, 0, shuffle: false, cancellationToken))
        {
            rows += batch.Count;
        }

        return rows;
    }

    /// <summary>Random crop with zero padding and horizontal flip, row by row, into <paramref name="dst"/>.</summary>
    private static void Augment(float[] src, float[] dst, int n, int c, int h, int w, int pad, bool flip, Random random)
    {
        int plane = h * w;
        int length = c * plane;
        for (int r = 0; r < n; r++)
        {
            int dy = pad > 0 ? random.Next(-pad, pad + 1) : 0;
            int dx = pad > 0 ? random.Next(-pad, pad + 1) : 0;
            bool mirror = flip && random.Next(2) == 1;
            for (int ch = 0; ch < c; ch++)
            {
                int baseIndex = (r * length) + (ch * plane);
                for (int y = 0; y < h; y++)
                {
                    int sy = y + dy;
                    int outRow = baseIndex + (y * w);
                    if (sy < 0 || sy >= h)
                    {
                        Array.Clear(dst, outRow, w);
                        continue;
                    }

                    int inRow = baseIndex + (sy * w);
                    for (int x = 0; x < w; x++)
                    {
                        int sx = (mirror ? w - 1 - x : x) + dx;
                        dst[outRow + x] = sx >= 0 && sx < w ? src[inRow + sx] : 0f;
                    }
                }
            }
        }
    }

    private static Dictionary<string, Tensor> Snapshot(BnCnn network)
    {
        var copy = new Dictionary<string, Tensor>();
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor value) in network.state_dict())
        {
            copy[name] = value.detach().clone().DetachFromDisposeScope();
        }

        return copy;
    }

    private static void Restore(BnCnn network, Dictionary<string, Tensor> snapshot)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor value) in network.state_dict())
        {
            value.copy_(snapshot[name]);
        }
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null)
        {
            return;
        }

        foreach (Tensor t in tensors.Values)
        {
            t.Dispose();
        }

        tensors.Clear();
    }
}
