using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// The mini-batch training engine for a <see cref="BatchNormCnnNetwork"/> (the paper's stochastic gradient procedure, with the usual
/// modern optimizers and schedules).
/// <para>
/// <b>Data.</b> Batches stream from an <see cref="BatchSource"/>: one reused buffer per batch becomes one tensor; each
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
/// <b>Determinism.</b> Dropout and augmentation draw from private generators seeded with <see cref="TrainerOptions.Seed"/>
/// (libtorch's global random stream is neither used nor changed), and row order comes from the source's seed and the
/// epoch, so the same network initialization, options and data give the same weights at the same thread count.
/// </para>
/// <para>
/// <b>Ending.</b> Cancellation throws <see cref="OperationCanceledException"/>. A NaN or infinite loss stops training
/// without an update for that step; this, or a final network with NaN or infinite weights, running statistics or
/// eval-mode scores, is recorded in <see cref="TrainingHistory.Divergence"/> and nothing is thrown. The network then gets
/// back the last state whose weights, BN running statistics, eval-mode scores and training loss were all finite
/// (<see cref="DivergenceInfo.RestoredStep"/>), because the diverged forward pass has already updated the running
/// statistics and the update before it may already have written non-finite weights. With a validation source the best
/// epoch's weights are restored (unless disabled), also after divergence, when they are finite. With
/// <see cref="TrainerOptions.WeightAveragingDecay"/> the averaged weights are written into the network first, unless training
/// diverged or the average is not finite (<see cref="TrainingHistory.UsedWeightAverage"/>). The network is left in
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

    /// <summary>What else a checkpoint must match, from the caller (the estimator: the initial model's fingerprint); null: nothing.</summary>
    internal string? CallerIdentity { get; init; }

    /// <summary>Trains <paramref name="network"/> in place on <paramref name="train"/>.</summary>
    /// <param name="network">The network; its initialization is the caller's (build it with a seed for reproducible weights).</param>
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
        BatchNormCnnNetwork network,
        BatchSource train,
        BatchSource? validation = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(train);
        TrainerOptions o = Options.Clone();
        o.Validate();
        CheckShapes(network.Architecture, train, validation, o);
        CheckpointStore? checkpoints = CheckpointStore.For(o);
        Checkpoint? resume = checkpoints?.LoadLatest();
        o.Seed ??= resume?.Progress.Seed ?? Random.Shared.Next();

        using TorchThreadScope threads = TorchThreadScope.Set(o.Threads ?? Environment.ProcessorCount);
        using var frozen = new FrozenStages(network, o.FreezeConvolutionStages);
        long rows = PrepareInput(network, train, validation, o, computeStandardization: resume is null && o.ComputeInputStandardization, cancellationToken);
        string identity = TrainingIdentity.Of(network.Architecture, o, train, validation, rows, CallerIdentity);
        if (resume is not null && TrainingIdentity.FirstDifference(resume.Identity, identity) is string difference)
        {
            throw new InvalidOperationException(
                $"The checkpoint '{resume.Path}' belongs to another run: {difference}. Resume with the settings and data it was written with, " +
                "or give this run another TrainerOptions.CheckpointDirectory (or empty the folder) to start anew.");
        }

        if (resume is { Progress.Finished: true })
            return FinishedRun(network, resume);
        TrainingHistory history = resume is null ? NewHistory(network, o.Seed.Value, rows) : ResumedHistory(resume);
        TrainingPlan plan = TrainingPlan.For(rows, o);
        history.PlannedSteps = plan.Steps;
        using torch.optim.Optimizer optimizer = CreateOptimizer(network, o);
        var clock = new TrainingClock(TimeSpan.FromSeconds(resume?.Progress.ElapsedSeconds ?? 0));
        using var run = new TrainingRun(new TrainingSetup(network, train, validation, o, history, plan, clock, optimizer, progress, cancellationToken, checkpoints, identity));
        if (resume is not null)
            run.Resume(resume);
        RunReportingFallbacks(run, network, history);
        network.eval();
        return history;
    }

    private static TrainingHistory NewHistory(BatchNormCnnNetwork network, int seed, long rows) => new()
    {
        LayersData = network.ProbedLayers.ToList(),
        Seed = seed,
        InputMeanData = network.InputMean,
        InputStdData = network.InputStd,
        TrainingRows = rows,
    };

    private static TrainingHistory ResumedHistory(Checkpoint checkpoint)
    {
        TrainingHistory history = TrainingHistory.FromJson(checkpoint.HistoryJson);
        history.ResumedAfterEpoch = checkpoint.Progress.CompletedEpochs;
        return history;
    }

    /// <summary>A checkpoint of a finished run: its model, and its history, without training.</summary>
    private static TrainingHistory FinishedRun(BatchNormCnnNetwork network, Checkpoint checkpoint)
    {
        checkpoint.RestoreNetwork(network);
        network.eval();
        TrainingHistory history = ResumedHistory(checkpoint);
        history.LoadedFinishedRun = true;
        return history;
    }

    /// <summary>Runs <paramref name="run"/>; the bfloat16 fallbacks it meets go into the history and to the network's receiver.</summary>
    private static void RunReportingFallbacks(TrainingRun run, BatchNormCnnNetwork network, TrainingHistory history)
    {
        Action<BFloat16Fallback>? report = network.BFloat16FallbackReported;
        network.BFloat16FallbackReported = f =>
        {
            history.BFloat16FallbacksData.Add(f.ToString());
            report?.Invoke(f);
        };
        try
        {
            run.Run();
        }
        finally
        {
            network.BFloat16FallbackReported = report;
        }
    }

    /// <summary>The rows must have the network's input length, and the random crop must fit in the image.</summary>
    private static void CheckShapes(NetworkArchitecture arch, BatchSource train, BatchSource? validation, TrainerOptions o)
    {
        if (train.FeatureLength != arch.InputLength)
        {
            throw new ArgumentException($"Training rows have {train.FeatureLength} values; the network expects {arch.InputLength} ({arch.InputChannels}×{arch.InputHeight}×{arch.InputWidth}).", nameof(train));
        }

        if (validation is not null && validation.FeatureLength != arch.InputLength)
        {
            throw new ArgumentException($"Validation rows have {validation.FeatureLength} values; the network expects {arch.InputLength}.", nameof(validation));
        }

        o.CheckFits(arch.InputHeight, arch.InputWidth, field => "TrainerOptions." + field);
    }

    /// <summary>
    /// The pass before training: computes and stores the input standardization (or only counts the rows), and checks
    /// that there are at least 2 training rows and, when given, validation rows. Returns the training row count.
    /// </summary>
    private static long PrepareInput(
        BatchNormCnnNetwork network, BatchSource train, BatchSource? validation, TrainerOptions o, bool computeStandardization, CancellationToken cancellationToken)
    {
        long rows;
        if (computeStandardization)
        {
            InputStatistics stats = InputStandardization.Compute(train, network.Architecture.StandardizationLength, cancellationToken: cancellationToken);
            network.SetInputStandardization(stats.Mean, stats.Std);
            if (network.Architecture.Task == NetworkTask.Regression)
                network.SetTargetStandardization(stats.TargetMean, stats.TargetStd);
            rows = stats.Rows;
        }
        else
        {
            rows = CountRows(train, cancellationToken);
        }

        if (rows < 2)
        {
            throw new ArgumentException($"Training needs at least 2 rows; {train.DataName ?? "the training data"} has {rows}.", nameof(train));
        }

        if (validation is not null && CountRows(validation, cancellationToken) == 0)
        {
            throw new ArgumentException($"{Capitalized(validation.DataName ?? "the validation data")} has no rows; pass rows, or no validation data.", nameof(validation));
        }

        return rows;
    }

    private static torch.optim.Optimizer CreateOptimizer(BatchNormCnnNetwork network, TrainerOptions o)
    {
        double lr = o.LearningRate * o.LearningRateMultiplier;
        return o.Optimizer switch
        {
            OptimizerKind.Sgd => torch.optim.SGD(Trainable(network), lr, o.Momentum, 0, o.WeightDecay, o.Nesterov && o.Momentum > 0),
            OptimizerKind.Adam => torch.optim.Adam(Trainable(network), lr, o.Beta1, o.Beta2, 1e-8, o.WeightDecay),
            OptimizerKind.AdamW => torch.optim.AdamW(Trainable(network), lr, o.Beta1, o.Beta2, 1e-8, o.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(o), o.Optimizer, "Unknown optimizer."),
        };
    }

    private static string Capitalized(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    /// <summary>The parameters the optimizer updates: all but those of frozen convolution stages.</summary>
    private static IEnumerable<TorchSharp.Modules.Parameter> Trainable(BatchNormCnnNetwork network) =>
        network.parameters().Where(p => p.requires_grad).ToList();

    private static long CountRows(BatchSource source, CancellationToken cancellationToken)
    {
        long rows = 0;
        foreach (MiniBatch batch in source.ReadEpoch(1000, 0, shuffle: false, cancellationToken))
        {
            rows += batch.Count;
        }

        return rows;
    }
}
