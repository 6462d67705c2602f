using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// Trains a Batch-Normalized CNN on an <see cref="IDataView"/> of images and returns a <see cref="BatchNormCnnTransformer"/>.
/// Create it with <see cref="BatchNormCnnCatalog.BatchNormCnn(TransformsCatalog, BatchNormCnnOptions)"/>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>Features (input, <see cref="BatchNormCnnOptions.FeatureColumnName"/>)</term><description>Known-size vector of
/// <see cref="float"/> (or <see cref="byte"/>, <see cref="double"/>, converted) of length ImageChannels×ImageHeight×ImageWidth,
/// channel-major, raw pixel units (standardized inside the network).</description></item>
/// <item><term>Label (input, training only, <see cref="BatchNormCnnOptions.LabelColumnName"/>)</term><description>Key type
/// (use <c>MapValueToKey</c>); its key count is the class count.</description></item>
/// <item><term>Score (output, <see cref="BatchNormCnnOptions.ScoreColumnName"/>)</term><description>Known-size vector of
/// <see cref="float"/>: softmax probabilities, one per class, with <c>SlotNames</c> from the label's key values.</description></item>
/// <item><term>PredictedLabel (output, <see cref="BatchNormCnnOptions.PredictedLabelColumnName"/>)</term><description>Key of
/// <see cref="uint"/> with the label's class count and its <c>KeyValues</c> (so <c>MapKeyToValue</c> gives the original label).</description></item>
/// <item><term>Embedding (optional output, <see cref="BatchNormCnnOptions.EmbeddingColumnName"/>)</term><description>Known-size
/// vector of <see cref="float"/>: the last hidden layer's activations.</description></item>
/// </list>
/// <para><b>Image pipelines.</b> With ML.NET's <c>ExtractPixels</c>, keep <c>interleavePixelColors: false</c> (its
/// default): its planar output, C planes of H×W, is the network's C×H×W. ML.NET adds no annotation naming the layout;
/// the only trace is the vector type's dimensions, C×H×W when planar and H×W×C when interleaved. <see cref="Fit(IDataView)"/> and
/// the transformer read them: an H×W×C column (C &gt; 1) is refused with a message naming
/// <c>interleavePixelColors: false</c>, other three-dimensional shapes that are not C×H×W are refused too, and
/// H×W×1 passes (the same values as 1×H×W). The dimensions survive <c>CopyColumns</c> and a one-column
/// <c>Concatenate</c>, but a vector without them (pixels from the application's own row class, a text file, a
/// multi-column <c>Concatenate</c>) carries no layout: an interleaved vector of the right length then cannot be told
/// apart and is read as planar.</para>
/// <para>All input columns pass through. <see cref="Fit(IDataView)"/> streams the data (a bounded shuffle buffer, never the whole
/// view), logs through the <see cref="MLContext"/> log (<c>mlContext.Log</c>) and <see cref="BatchNormCnnOptions.Progress"/>,
/// and returns the transformer in eval mode.</para>
/// </remarks>
public sealed class BatchNormCnnEstimator : IEstimator<BatchNormCnnTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly BatchNormCnnOptions _options;

    internal BatchNormCnnEstimator(IHostEnvironment env, BatchNormCnnOptions options, NetworkTask task = NetworkTask.MulticlassClassification)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        _env = env;
        _options = options.Clone();
        _options.Validate();
        Task = task;
        if (_options.TestTimeFlipAveraging && task != NetworkTask.MulticlassClassification)
        {
            throw new ArgumentException(
                $"BatchNormCnnOptions.TestTimeFlipAveraging averages class probabilities, for multiclass classification; this is {task}.", nameof(options));
        }
    }

    /// <summary>A copy of the settings.</summary>
    public BatchNormCnnOptions Options => _options.Clone();

    /// <summary>What the network learns, as the catalog chose: multiclass classification, binary classification or regression.</summary>
    public NetworkTask Task { get; }

    /// <summary>Checks the input columns (feature: vector of Single/Byte/Double, not variable-size; label: key) and describes the output.</summary>
    /// <exception cref="ArgumentException">A column is missing or has the wrong type; the message names the column, its type and what was expected.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        BatchNormCnnSchema.GetOutputShape(inputSchema, ColumnSettings.From(_options, Task));

    /// <summary>Trains the network on <paramref name="input"/> (with <see cref="BatchNormCnnOptions.ValidationData"/> when it is set).</summary>
    /// <inheritdoc cref="Fit(IDataView, IDataView?)"/>
    public BatchNormCnnTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains the network on <paramref name="trainData"/> and evaluates <paramref name="validationData"/> after every
    /// epoch: its accuracy picks the best epoch, whose weights the model keeps, and
    /// <see cref="BatchNormCnnOptions.EarlyStoppingPatience"/> stops on it. The validation data takes the place of the
    /// <see cref="BatchNormCnnOptions.ValidationData"/> option (give one or the other).
    /// </summary>
    /// <param name="trainData">The training rows.</param>
    /// <param name="validationData">Rows with the same columns, or null for none.</param>
    /// <exception cref="ArgumentException">The columns do not fit (see <see cref="GetOutputSchema"/>; here the vector length is also
    /// checked), the training or validation data has no rows, validation data is given twice (argument and option), or early
    /// stopping has no validation data.</exception>
    /// <exception cref="InvalidDataException">A feature value of the training or validation data is NaN or infinite; the message
    /// names the column, the row, the slot and the value, and ML.NET's ReplaceMissingValues and FilterRowsByMissingValues.</exception>
    /// <exception cref="TrainingDivergedException">Training diverged before any optimizer step gave a finite network. When it
    /// diverges later, the transformer holds the last finite state instead (weights and BN running statistics), the log
    /// carries a warning, and <see cref="BatchNormCnnTransformer.TrainingHistory"/> the details (<see cref="TrainingHistory.Divergence"/>).</exception>
    /// <exception cref="OperationCanceledException"><see cref="BatchNormCnnOptions.CancellationToken"/> was cancelled.</exception>
    /// <remarks>The libtorch thread count set by <see cref="BatchNormCnnOptions.Threads"/> holds during Fit only; the process's
    /// previous count is put back when Fit returns or throws. libtorch's global random stream is not used.</remarks>
    public BatchNormCnnTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var o = _options;
        var validation = ValidationInput.Resolve(validationData, trainData, o);
        var columns = ColumnSettings.From(o, Task);
        var labels = CheckData(trainData, validation, columns);

        var host = _env.Register("BatchNormCnn");
        var trainerOptions = o.Trainer.Clone();
        int seed = trainerOptions.Seed ??= CheckpointStore.For(trainerOptions)?.LoadLatest()?.Progress.Seed ?? host.Rand.Next();
        var architecture = o.Network.Clone();
        (architecture.Task, architecture.ClassCount) = (Task, Math.Max(1, labels.Count));
        architecture.Validate();
        bool sameClasses = o.InitialModel is { } initial && InitialModel.Check(initial, architecture, labels.Names);

        using var ch = host.Start("Fit");
        ch.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: training {architecture.ToJson()} on '{columns.FeatureColumnName}' ({columns.ShapeText}) → {(Task == NetworkTask.MulticlassClassification ? $"{labels.Count} classes" : Task.ToString())}; " +
                $"{o.Epochs} epochs, batch {o.BatchSize}, {o.Optimizer} lr {o.LearningRate} ({o.Schedule}), seed {seed}, inference {o.InferenceMode}.");

        using var threads = TorchThreadScope.Set(trainerOptions.Threads ?? Environment.ProcessorCount);
        var network = new BatchNormCnnNetwork(architecture, seed);
        try
        {
            StartFrom(network, sameClasses, trainerOptions, ch);
            network.to(TorchDevice.Select(_env, ch));
            var train = new DataViewBatchSource(trainData, columns.FeatureColumnName, columns.LabelColumnName, columns.FeatureLength, o.ShuffleBufferSize, seed)
            {
                DataName = "the training data",
                HoldOut = validation?.Split(seed, validationPart: false),
            };
            var history = Train(network, train, validation, trainerOptions, ch);
            FinishNetwork(network, train, ch);
            return new BatchNormCnnTransformer(host, columns, labels, network, history, ScoringSettings.From(o));
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Runs the trainer (reporting to the log and the progress receiver) and logs how training ended.</summary>
    private TrainingHistory Train(BatchNormCnnNetwork network, DataViewBatchSource train, ValidationInput? validation, TrainerOptions trainerOptions, IChannel ch)
    {
        var o = _options;
        var columns = ColumnSettings.From(o, Task);
        var validationSource = validation is null
            ? null
            : new DataViewBatchSource(validation.Data, columns.FeatureColumnName, columns.LabelColumnName, columns.FeatureLength, o.ShuffleBufferSize, trainerOptions.Seed!.Value)
            {
                DataName = validation.Name,
                HoldOut = validation.Split(trainerOptions.Seed!.Value, validationPart: true),
            };
        network.BFloat16FallbackReported = f => ch.Warning(MessageSensitivity.None, "{0}", "BatchNormCnn: " + f);
        var trainer = new Trainer(trainerOptions) { CallerIdentity = o.InitialModel is { } m ? "initial model " + InitialModel.Fingerprint(m) : null };
        var history = trainer.Train(network, train, validationSource, new ChannelProgress(ch, o.Progress), o.CancellationToken);
        if (history.ResumedAfterEpoch is int resumed)
        {
            ch.Info(MessageSensitivity.None, "{0}", history.LoadedFinishedRun
                ? $"BatchNormCnn: the checkpoint in '{trainerOptions.CheckpointDirectory}' holds a finished run ({resumed} epochs); its model is returned without training."
                : $"BatchNormCnn: resumed from the checkpoint in '{trainerOptions.CheckpointDirectory}' after epoch {resumed}.");
        }

        ReportDivergence(ch, history, o);

        var last = history.Epochs.LastOrDefault();
        ch.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: trained {history.TotalSteps} steps on {history.TrainingRows} rows in {history.TrainSeconds:F1} s" +
                (last is null ? "." : $"; last epoch loss {last.TrainLoss:F4}, accuracy {last.TrainAccuracy:F4}" +
                 (last.ValidationAccuracy is double va ? $", validation accuracy {va:F4}." : ".")));
        return history;
    }

    /// <summary>
    /// With <see cref="BatchNormCnnOptions.InitialModel"/>: its weights (all, or all but the output layer with other
    /// classes) and its input standardization, which training then keeps.
    /// </summary>
    private void StartFrom(BatchNormCnnNetwork network, bool sameClasses, TrainerOptions trainerOptions, IChannel ch)
    {
        if (_options.InitialModel is not { } model)
            return;
        InitialModel.Apply(model, network, sameClasses);
        trainerOptions.ComputeInputStandardization = false;
        ch.Info(MessageSensitivity.None, "{0}", sameClasses
            ? "BatchNormCnn: continuing from the initial model (same classes: every layer carries over)."
            : $"BatchNormCnn: starting from the initial model's body (its classes differ: a new output layer is trained){(trainerOptions.FreezeConvolutionStages ? "; the convolution stages are frozen" : string.Empty)}.");
    }

    /// <summary>After training: population statistics when asked for (Algorithm 2), then eval mode.</summary>
    private void FinishNetwork(BatchNormCnnNetwork network, DataViewBatchSource train, IChannel ch)
    {
        var o = _options;
        if (o.InferenceMode == BatchNormInferenceMode.PopulationStatistics)
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            int batches = Normalization.PopulationStatistics.Recompute(network, Batches(train, o.BatchSize, train.FeatureLength, network.Device, o.CancellationToken));
            ch.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: replaced the BN moving averages by population statistics over {batches} training mini-batches (Algorithm 2).");
        }

        network.eval();
    }

    /// <summary>
    /// Checks the training data and the optional validation data (feature column, rows, key-typed label column with the
    /// same number of classes) and returns the training data's class labels.
    /// </summary>
    private static ClassLabels CheckData(IDataView input, ValidationInput? validation, ColumnSettings columns)
    {
        BatchNormCnnSchema.CheckFeatureColumn(input.Schema, columns, nameof(input));
        CheckHasRows(input, $"The training data (Fit's input, feature column '{columns.FeatureColumnName}', label column '{columns.LabelColumnName}') has no rows; " +
            "training needs at least 2. Check the file or collection it was loaded from and any filter before the estimator.", nameof(input));
        var labelColumn = BatchNormCnnSchema.CheckLabelColumn(input.Schema, columns, nameof(input));
        var labels = ClassLabels.For(columns.Task, labelColumn);
        if (validation is { IsHoldOut: false })
        {
            BatchNormCnnSchema.CheckFeatureColumn(validation.Data.Schema, columns, validation.ParamName);
            CheckHasRows(validation.Data, $"{Capitalized(validation.Name)} has no rows; pass data with rows, or no validation data.", validation.ParamName);
            var vl = BatchNormCnnSchema.CheckLabelColumn(validation.Data.Schema, columns, validation.ParamName);
            if (vl.Type is KeyDataViewType validationKey && validationKey.Count != (ulong)labels.Count)
            {
                throw new ArgumentException(
                    $"The label column '{columns.LabelColumnName}' of {validation.Name} has {validationKey.Count} classes; the training data has {labels.Count}. " +
                    "Fit one MapValueToKey on the training data and apply it to both.", validation.ParamName);
            }
        }

        return labels;
    }

    private static string Capitalized(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    private static void CheckHasRows(IDataView data, string message, string paramName)
    {
        if (data.GetRowCount() is long known ? known > 0 : HasFirstRow(data))
            return;
        throw new ArgumentException(message, paramName);
    }

    private static bool HasFirstRow(IDataView data)
    {
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        return cursor.MoveNext();
    }

    /// <summary>
    /// A diverged run keeps the last finite state (the trainer restored it) and is logged as a warning; when no optimizer
    /// step ever gave a finite network (or the best validation epoch was not kept), there is nothing to return: throws.
    /// </summary>
    private static void ReportDivergence(IChannel ch, TrainingHistory history, BatchNormCnnOptions o)
    {
        if (history.Divergence is not { } d)
            return;
        string what = !d.NonFiniteState ? $"the loss was {d.Loss}"
            : d.NonFiniteTensors.Count > 0 ? $"the weights or BN running statistics became NaN or infinite ({string.Join(", ", d.NonFiniteTensors)}) after a finite loss of {d.Loss:G6}"
            : $"the eval-mode scores became NaN or infinite after a finite loss of {d.Loss:G6}";
        string lr = $"learning rate {d.LearningRate:G4}";
        string advice = $"Lower LearningRate (now {o.LearningRate:G4}" + (o.LearningRateMultiplier != 1 ? $", LearningRateMultiplier {o.LearningRateMultiplier:G4}" : string.Empty) +
            $"), for example 10 times, or use a schedule that starts low (Schedule = OneCycle warms up; now {o.Schedule}).";
        if (history.RestoredBestWeights || d.RestoredStep is > 0)
        {
            string kept = history.RestoredBestWeights
                ? $"the transformer holds the best validation epoch ({history.BestEpoch})"
                : $"the transformer holds the network as it was after step {d.RestoredStep} (weights and BN running statistics), the last finite state";
            ch.Warning(MessageSensitivity.None, "{0}", $"BatchNormCnn: training diverged at epoch {d.Epoch}, step {d.Step} ({what}, {lr}); {kept}. " +
                advice + " See TrainingHistory.Divergence.");
            return;
        }

        throw new TrainingDivergedException(
            $"BatchNormCnn: training diverged at step {d.Step} (epoch {d.Epoch}): {what}, {lr}; no optimizer step gave a finite network, so there is " +
            "no trained model to return. " + advice, history);
    }

    /// <summary>Training mini-batches as tensors for Algorithm 2 (one pass, unshuffled; batches of one row are skipped).</summary>
    private static IEnumerable<Tensor> Batches(BatchSource source, int batchSize, int featureLength, Device device, CancellationToken token)
    {
        foreach (var batch in source.ReadEpoch(batchSize, epoch: 0, shuffle: false, token))
        {
            if (batch.Count < 2)
                continue;
            var copy = new float[batch.Count * featureLength];
            Array.Copy(batch.Features, copy, copy.Length);
            using var t = torch.tensor(copy, [batch.Count, (long)featureLength], device: device);
            yield return t;
        }
    }

    /// <summary>Forwards progress to the caller's receiver and to the ML.NET log channel.</summary>
    private sealed class ChannelProgress(IChannel channel, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.EpochCompleted)
            {
                channel.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: epoch {value.Epoch + 1}/{value.PlannedEpochs} step {value.Step}/{value.PlannedSteps} loss {value.Loss:F4} " +
                             $"accuracy {value.Accuracy:F4}" + (value.ValidationAccuracy is double v ? $" validation {v:F4}" : string.Empty) +
                             $" lr {value.LearningRate:G4} {value.ImagesPerSecond:F0} img/s {value.ElapsedSeconds:F1} s");
            }
            else
            {
                channel.Trace(MessageSensitivity.None, "{0}", $"BatchNormCnn: epoch {value.Epoch + 1} step {value.Step}/{value.PlannedSteps} loss {value.Loss:F4} {value.ImagesPerSecond:F0} img/s");
            }

            inner?.Report(value);
        }
    }
}
