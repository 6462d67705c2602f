using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Bn.MLNet;

/// <summary>
/// A trained Batch-Normalized CNN as an ML.NET transformer: scores images in eval mode (BN uses its inference
/// statistics, dropout is off) and adds <c>Score</c> (softmax probabilities), <c>PredictedLabel</c> (the label's key
/// type with its key values) and optionally an embedding column; every input column passes through.
/// </summary>
/// <remarks>
/// <para><see cref="Transform"/> is lazy: its cursors read up to <see cref="InferenceBatchSize"/> rows ahead, score
/// them in one forward pass under no_grad, and dispose every tensor. <see cref="GetRowToRowMapper"/> scores one row at
/// a time, so <c>mlContext.Model.CreatePredictionEngine</c> works and agrees with <see cref="Transform"/>.</para>
/// <para>NaN or infinity in a row's features: scoring does not check the values (one bad row must not fail a whole
/// batch of scoring). That row's <c>Score</c> is NaN, its <c>PredictedLabel</c> the missing key 0 (as ML.NET's own
/// scorers give), and its embedding may hold NaN; the other rows of the same forward pass are unaffected (eval mode has
/// no batch statistics). Filter or replace such values first (<c>FilterRowsByMissingValues</c>,
/// <c>ReplaceMissingValues</c>) when that matters. Scoring does not change libtorch's thread count.</para>
/// <para>With <see cref="TestTimeFlipAveraging"/> on, every scoring path (cursors and prediction engines) scores each
/// row as the mean of the softmax probabilities of the image and of its horizontal mirror, in one forward pass over both;
/// <c>PredictedLabel</c> follows the averaged probabilities and the embedding is the un-flipped image's.</para>
/// <para>Thread safety: one transformer may serve several cursors and prediction engines on several threads at once;
/// the network is only read.</para>
/// <para>Save and load with <c>mlContext.Model.Save</c>/<c>Load</c>. A process that loads a model without having used
/// Bn.MLNet before must call <see cref="BatchNormCnnCatalog.RegisterBatchNormCnn"/> (or touch any Bn.MLNet type) first.</para>
/// </remarks>
public sealed partial class BatchNormCnnTransformer : ITransformer, IDisposable
{
    /// <summary>Loader signature written into ML.NET's model header.</summary>
    internal const string LoaderSignature = "BatchNormCnnTransformer";

    /// <summary>ML.NET-level versions: 8-character model signature and version numbers of the header.</summary>
    internal static readonly ModelVersion ModelVersionInfo = new("BNCNNTRF", 0x00010001, 0x00010001, 0x00010001, LoaderSignature);

    private readonly BatchNormCnnNetwork _network;
    private readonly BatchNormCnnNetwork _scoringNetwork;
    private readonly ColumnSettings _columns;
    private readonly ClassLabels _labels;
    private readonly NetworkScorer _scorer;
    private readonly ScoringSettings _scoring;
    private readonly IHost _host;
    private bool _disposed;

    internal BatchNormCnnTransformer(
        IHost host,
        ColumnSettings columns,
        ClassLabels labels,
        BatchNormCnnNetwork network,
        TrainingHistory? history,
        ScoringSettings scoring)
    {
        if (scoring.TestTimeFlipAveraging)
        {
            FlipAveraging.RequireImage(columns.ImageChannels, columns.ImageHeight, columns.ImageWidth, "BatchNormCnnOptions." + nameof(BatchNormCnnOptions.TestTimeFlipAveraging));
            if (network.Architecture.Task != NetworkTask.MulticlassClassification)
                throw new ArgumentException($"BatchNormCnnOptions.TestTimeFlipAveraging averages class probabilities, for multiclass classification; this model is {network.Architecture.Task}.");
        }
        _host = host;
        _columns = columns;
        _labels = labels;
        _network = network;
        _network.eval();
        _scoring = scoring;
        _scoringNetwork = scoring.InferenceMode == BatchNormInferenceMode.Folded ? network.FoldBatchNorm() : network;
        _scoringNetwork.eval();
        TrainingHistory = history;
        try
        {
            _scorer = new NetworkScorer(_scoringNetwork, columns.FeatureLength, labels.Count, scoring.TestTimeFlipAveraging, scoring.Engine, host);
        }
        catch
        {
            if (!ReferenceEquals(_scoringNetwork, _network))
                _scoringNetwork.Dispose();
            throw;
        }
    }

    /// <summary>The trained network, in eval mode (not folded, also when <see cref="InferenceMode"/> is <see cref="BatchNormInferenceMode.Folded"/>); scoring reads it, nothing may change it.</summary>
    internal BatchNormCnnNetwork Network => _network;

    /// <summary>The network used for scoring: <see cref="Network"/>, or its BN-folded copy.</summary>
    internal BatchNormCnnNetwork ScoringNetwork => _scoringNetwork;

    /// <summary>
    /// A copy of the trained network (weights, running statistics and input standardization; not folded), in eval mode.
    /// The caller owns and disposes it; changing it does not change what this transformer computes.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This transformer was disposed.</exception>
    public BatchNormCnnNetwork CopyNetwork()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return CopyOf(_network);
    }

    /// <summary>A new network with <paramref name="network"/>'s architecture and state, in eval mode.</summary>
    internal static BatchNormCnnNetwork CopyOf(BatchNormCnnNetwork network)
    {
        var copy = new BatchNormCnnNetwork(network.Architecture);
        try
        {
            BatchNormCnnModelFormat.ImportStateDict(copy, BatchNormCnnModelFormat.ExportStateDict(network));
            copy.to(network.Device);
            copy.eval();
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>What happened during training (for a loaded model, as saved); null if not recorded.</summary>
    public TrainingHistory? TrainingHistory { get; }

    /// <summary>How Batch Normalization behaves at inference.</summary>
    public BatchNormInferenceMode InferenceMode => _scoring.InferenceMode;

    /// <summary>Rows per forward pass in <see cref="Transform"/>'s cursors.</summary>
    public int InferenceBatchSize => _scoring.BatchSize;

    /// <summary>
    /// The requested scoring engine (<see cref="BatchNormCnnOptions.ScoringEngine"/>), saved with the model; use
    /// <see cref="WithScoringEngine"/> to score a trained model with another.
    /// </summary>
    public ScoringEngine ScoringEngine => _scoring.Engine;

    /// <summary>
    /// The engine that scores: <see cref="ScoringEngine.OnnxRuntime"/> or <see cref="ScoringEngine.LibTorch"/>. For
    /// <see cref="ScoringEngine.Automatic"/> the choice is made on first use (of this property or of scoring) and
    /// written to the <c>MLContext</c> log with its reason.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public ScoringEngine ActiveScoringEngine => _scorer.ActiveEngine;

    /// <summary>
    /// Whether each image is scored as the mean of the softmax probabilities of the image and of its horizontal mirror
    /// (see <see cref="BatchNormCnnOptions.TestTimeFlipAveraging"/>); saved with the model. Use
    /// <see cref="WithTestTimeFlipAveraging"/> to compare both settings on one trained model.
    /// </summary>
    public bool TestTimeFlipAveraging => _scoring.TestTimeFlipAveraging;

    /// <summary>The class names (the label's key values as text, or "0", "1", … when it had none), by class index.</summary>
    public IReadOnlyList<string> ClassNames => _labels.Names;

    /// <summary>The feature column read.</summary>
    public string FeatureColumnName => _columns.FeatureColumnName;

    /// <summary>The label column the model was trained on.</summary>
    public string LabelColumnName => _columns.LabelColumnName;

    /// <summary>The score column written (class probabilities, the binary logit, or the regression prediction).</summary>
    public string ScoreColumnName => _columns.ScoreColumnName;

    /// <summary>Binary classification: the probability column written (null for the other tasks).</summary>
    public string? ProbabilityColumnName => _columns.Task == NetworkTask.BinaryClassification ? _columns.ProbabilityColumnName : null;

    /// <summary>The predicted-label column written.</summary>
    public string PredictedLabelColumnName => _columns.PredictedLabelColumnName;

    /// <summary>The embedding column written, or null.</summary>
    public string? EmbeddingColumnName => _columns.EmbeddingColumnName;

    /// <summary>The network description.</summary>
    public NetworkArchitecture Architecture => _network.Architecture;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The feature column is missing or not a known-size vector of Single, Byte or Double of length C×H×W.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        BatchNormCnnSchema.CheckFeatureColumn(inputSchema, _columns);
        return BatchNormCnnSchema.BuildOutputSchema(inputSchema, _columns, _labels, _scorer.EmbeddingSize);
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ScoringDataView(input, new ScoringBinding(input.Schema, _columns, _labels, _scorer, InferenceBatchSize));
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ScoringRowMapper(new ScoringBinding(inputSchema, _columns, _labels, _scorer, InferenceBatchSize));
    }

    /// <summary>Saves into ML.NET's model repository; called by <c>mlContext.Model.Save</c>.</summary>
    /// <param name="ctx">ML.NET's save context.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Binary format: see BatchNormCnnModelFormat.WriteMain (main stream) and WriteNetwork (side stream).
        var content = CreateContent();
        var network = BatchNormCnnModelFormat.WriteNetwork(content);
        var writer = MLNetInternals.BeginSave(ctx, ModelVersionInfo);
        BatchNormCnnModelFormat.WriteMain(writer, content, network, SaveFormatVersionOverride ?? BatchNormCnnModelFormat.FormatVersion);
        MLNetInternals.SaveBinaryStream(ctx, BatchNormCnnModelFormat.NetworkStreamName, w => w.Write(network));
    }

    /// <summary>For tests: write a different payload format version.</summary>
    internal int? SaveFormatVersionOverride { get; set; }

    /// <summary>For tests: changes the exported tensors before writing (to build models with missing or extra weights).</summary>
    internal Func<List<NamedTensor>, List<NamedTensor>>? SaveTensorEditor { get; set; }

    internal BatchNormCnnModelContent CreateContent()
    {
        var tensors = BatchNormCnnModelFormat.ExportStateDict(_network);
        if (SaveTensorEditor is not null)
            tensors = SaveTensorEditor(tensors);
        return new BatchNormCnnModelContent(
            _columns, _scoring, _network.Architecture, _network.InputMean, _network.InputStd,
            _labels, TrainingHistory, tensors);
    }

    /// <summary>The loader ML.NET reaches through the emitted loader assembly.</summary>
    internal static BatchNormCnnTransformer Create(IHostEnvironment env, MLNetInternals.ModelLoadReader ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(ModelVersionInfo);
        var main = BatchNormCnnModelFormat.ReadMain(ctx.Reader);
        byte[]? bytes = null;
        if (!ctx.TryLoadBinaryStream(BatchNormCnnModelFormat.NetworkStreamName, r => bytes = BatchNormCnnModelFormat.ReadNetworkBytes(r, main)))
            throw new InvalidDataException($"The BatchNormCnn model has no stream {BatchNormCnnModelFormat.NetworkStreamName}; the file is incomplete.");
        var content = BatchNormCnnModelFormat.ParseNetwork(bytes!, main);

        var network = new BatchNormCnnNetwork(content.Architecture);
        try
        {
            BatchNormCnnModelFormat.ImportStateDict(network, content.Tensors);
            var mean = network.InputMean;
            var std = network.InputStd;
            if (!mean.SequenceEqual(content.InputMean) || !std.SequenceEqual(content.InputStd))
                throw new InvalidDataException("The BatchNormCnn model's input standardization differs from the network's buffers.");
            var host = env.Register(nameof(BatchNormCnnTransformer));
            using (var ch = host.Start("Load"))
            {
                network.to(TorchDevice.Select(env, ch));
                var transformer = new BatchNormCnnTransformer(host, content.Columns, content.Labels, network, content.History, content.Scoring);
                ch.Info(MessageSensitivity.None, "{0}", $"Loaded BatchNormCnn model: {content.Architecture.ToJson()}, {content.Labels.Count} classes, inference mode {content.Scoring.InferenceMode}, " +
                    $"test-time flip averaging {(content.Scoring.TestTimeFlipAveraging ? "on" : "off")}, scoring engine {content.Scoring.Engine}.");
                return transformer;
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Wraps a network trained outside an ML.NET pipeline (for example with <see cref="Trainer"/>) as a transformer,
    /// so that it scores, saves and loads through <c>mlContext.Model</c> like one that <c>Fit</c> returned. The
    /// transformer holds its own copy of the weights (in eval mode); <paramref name="network"/> stays the caller's.
    /// </summary>
    /// <param name="mlContext">The context the transformer is used with (ML.NET's convention for creating components).</param>
    /// <param name="network">The trained network; its architecture gives the image shape and the class count.</param>
    /// <param name="classNames">Multiclass: one name per class, in class order, the key values of <c>PredictedLabel</c> and the slot names
    /// of <c>Score</c>. Binary classification: empty (the classes are false and true). Regression: empty.</param>
    /// <param name="options">Column names, <see cref="BatchNormCnnOptions.InferenceMode"/>,
    /// <see cref="BatchNormCnnOptions.InferenceBatchSize"/> and <see cref="BatchNormCnnOptions.TestTimeFlipAveraging"/> (its image shape and training settings are not used). Default: the defaults.</param>
    /// <param name="history">What happened during training, saved with the model. Default null.</param>
    /// <exception cref="ArgumentException">The class names do not match the network's class count, or an option is invalid;
    /// <see cref="BatchNormInferenceMode.PopulationStatistics"/> is refused (call <c>PopulationStatistics.Recompute</c> on the network first).</exception>
    public static BatchNormCnnTransformer FromNetwork(
        MLContext mlContext, BatchNormCnnNetwork network, IReadOnlyList<string> classNames, BatchNormCnnOptions? options = null, TrainingHistory? history = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(classNames);
        var architecture = network.Architecture;
        ClassLabels labels = LabelsFor(architecture, classNames);
        var o = options?.Clone() ?? new BatchNormCnnOptions();
        o.Network = architecture;
        o.Trainer = new TrainerOptions();   // the network is trained: training settings do not apply
        o.Validate();
        if (o.InferenceMode == BatchNormInferenceMode.PopulationStatistics)
        {
            throw new ArgumentException("BatchNormCnnOptions.InferenceMode PopulationStatistics needs the training data: call " +
                "Normalization.PopulationStatistics.Recompute on the network first and use RunningAverages.", nameof(options));
        }

        var copy = CopyOf(network);
        try
        {
            return new BatchNormCnnTransformer(((IHostEnvironment)mlContext).Register(nameof(BatchNormCnnTransformer)), ColumnSettings.From(o, architecture.Task),
                labels, copy, history, ScoringSettings.From(o));
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>The classes of a network for <see cref="FromNetwork"/>.</summary>
    private static ClassLabels LabelsFor(NetworkArchitecture architecture, IReadOnlyList<string> classNames)
    {
        int expected = architecture.Task == NetworkTask.MulticlassClassification ? architecture.ClassCount : 0;
        if (classNames.Count != expected)
        {
            throw new ArgumentException(
                $"{classNames.Count} class names were given for a {architecture.Task} network, which needs {expected}" +
                (expected == 0 ? " (its classes are not named)." : "."), nameof(classNames));
        }

        return architecture.Task switch
        {
            NetworkTask.BinaryClassification => ClassLabels.Binary,
            NetworkTask.Regression => ClassLabels.None,
            _ => ClassLabels.FromNames(classNames),
        };
    }

    /// <summary>
    /// A new transformer with the same weights, columns, classes, history, inference mode and batch size, and
    /// <see cref="TestTimeFlipAveraging"/> set to <paramref name="enabled"/>: compares scoring with and without flip
    /// averaging on one trained model without retraining. The copy holds its own clone of the weights, so either
    /// transformer may be disposed without affecting the other; the caller owns (and disposes) the copy.
    /// </summary>
    /// <param name="enabled">Whether the copy averages each image's probabilities with its mirror's.</param>
    /// <exception cref="ObjectDisposedException">This transformer was disposed.</exception>
    /// <exception cref="ArgumentException"><paramref name="enabled"/> is true and the input is not an image (width below 2).</exception>
    public BatchNormCnnTransformer WithTestTimeFlipAveraging(bool enabled) => With(_scoring with { TestTimeFlipAveraging = enabled });

    /// <summary>
    /// A new transformer with the same weights, columns, classes, history and scoring settings, scored by
    /// <paramref name="engine"/>: for example <see cref="ScoringEngine.LibTorch"/> to compare both engines on one model. The
    /// copy holds its own clone of the weights; the caller owns (and disposes) it.
    /// </summary>
    /// <param name="engine">The engine the copy scores with.</param>
    /// <exception cref="ObjectDisposedException">This transformer was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="engine"/> is not a defined value.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="engine"/> is <see cref="ScoringEngine.OnnxRuntime"/> and ONNX
    /// Runtime cannot score here (the message says why).</exception>
    public BatchNormCnnTransformer WithScoringEngine(ScoringEngine engine)
    {
        if (!Enum.IsDefined(engine))
            throw new ArgumentOutOfRangeException(nameof(engine), engine, "Unknown scoring engine.");
        return With(_scoring with { Engine = engine });
    }

    /// <summary>A copy with its own clone of the weights and other scoring settings.</summary>
    private BatchNormCnnTransformer With(ScoringSettings scoring)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var copy = CopyOf(_network);
        try
        {
            return new BatchNormCnnTransformer(_host, _columns, _labels, copy, TrainingHistory, scoring);
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>Releases the network(s); the transformer cannot be used afterwards.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _scorer.Dispose();
        if (!ReferenceEquals(_scoringNetwork, _network))
            _scoringNetwork.Dispose();
        _network.Dispose();
    }
}
