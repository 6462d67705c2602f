using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Bn.MLNet;

/// <summary>
/// Entry points: <c>mlContext.MulticlassClassification.Trainers.BatchNormCnn(...)</c> (where ML.NET's trainers are),
/// <c>mlContext.Transforms.BatchNormCnn(...)</c> (the same estimator) and <c>mlContext.ComponentCatalog.RegisterBatchNormCnn()</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>Features (input)</term><description>Known-size vector of <see cref="float"/> (or <see cref="byte"/>, <see cref="double"/>)
/// of length ImageChannels×ImageHeight×ImageWidth (default 1×28×28 = 784).</description></item>
/// <item><term>Label (input, for Fit)</term><description>Key type; use <c>mlContext.Transforms.Conversion.MapValueToKey</c>.</description></item>
/// <item><term>Score (output)</term><description>Vector of <see cref="float"/>, softmax probabilities, one per class, with <c>SlotNames</c>.</description></item>
/// <item><term>PredictedLabel (output)</term><description>Key of <see cref="uint"/> with the label's <c>KeyValues</c>.</description></item>
/// <item><term>Embedding (optional output)</term><description>Vector of <see cref="float"/>, the last hidden layer.</description></item>
/// </list>
/// <para>All input columns pass through. See <see cref="BatchNormCnnEstimator"/> and <see cref="BatchNormCnnTransformer"/>.</para>
/// </remarks>
// RS0026 (one overload with optional parameters per name): the short overloads extend different catalogs, as ML.NET's
// own extension methods do, so calls cannot be ambiguous.
#pragma warning disable RS0026
public static class BatchNormCnnCatalog
{
    /// <summary>
    /// A Batch-Normalized CNN trainer for multiclass classification, where ML.NET's trainers are
    /// (<c>mlContext.MulticlassClassification.Trainers</c>); the same estimator as <c>mlContext.Transforms.BatchNormCnn</c>.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key-typed label column. Default "Label".</param>
    /// <param name="featureColumnName">Feature column (vector of C×H×W). Default "Features".</param>
    /// <param name="epochs">Passes over the training data. Default 10.</param>
    /// <param name="batchSize">Rows per mini-batch. Default 128.</param>
    /// <param name="learningRate">Peak learning rate. Default 0.1.</param>
    /// <param name="imageChannels">C. Default 1.</param>
    /// <param name="imageHeight">H. Default 28.</param>
    /// <param name="imageWidth">W. Default 28.</param>
    /// <param name="seed">Seed; default null draws one from the MLContext.</param>
    /// <param name="scoreColumnName">Output probabilities column. Default "Score".</param>
    /// <param name="predictedLabelColumnName">Output predicted-label column. Default "PredictedLabel".</param>
    /// <exception cref="ArgumentException">An argument is out of range.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = BatchNormCnnOptions.DefaultLabelColumnName,
        string featureColumnName = BatchNormCnnOptions.DefaultFeatureColumnName,
        int epochs = Training.TrainerOptions.DefaultEpochs,
        int batchSize = Training.TrainerOptions.DefaultBatchSize,
        double learningRate = Training.TrainerOptions.DefaultLearningRate,
        int imageChannels = Networks.NetworkArchitecture.DefaultInputChannels,
        int imageHeight = Networks.NetworkArchitecture.DefaultInputSize,
        int imageWidth = Networks.NetworkArchitecture.DefaultInputSize,
        int? seed = null,
        string scoreColumnName = BatchNormCnnOptions.DefaultScoreColumnName,
        string predictedLabelColumnName = BatchNormCnnOptions.DefaultPredictedLabelColumnName) =>
        BatchNormCnn(catalog, Short(featureColumnName, labelColumnName, scoreColumnName, predictedLabelColumnName, epochs, batchSize, learningRate,
            imageChannels, imageHeight, imageWidth, seed));

    /// <summary>A Batch-Normalized CNN trainer for multiclass classification with full settings.</summary>
    /// <param name="catalog">The multiclass trainers catalog (<c>mlContext.MulticlassClassification.Trainers</c>).</param>
    /// <param name="options">Settings; copied and validated.</param>
    /// <exception cref="ArgumentException">An option is out of range or contradicts another.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, BatchNormCnnOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new BatchNormCnnEstimator(MLNetInternals.GetEnvironment(catalog), options);
    }

    /// <summary>
    /// A Batch-Normalized network for binary classification (<c>mlContext.BinaryClassification.Trainers</c>): Boolean
    /// label; outputs Score (the logit), Probability (its sigmoid) and PredictedLabel (Boolean), what
    /// <c>mlContext.BinaryClassification.Evaluate</c> reads. The network is <see cref="BatchNormCnnOptions.Network"/>'s
    /// convolution stages or fully-connected layers with one output.
    /// </summary>
    /// <param name="catalog">The binary trainers catalog.</param>
    /// <param name="labelColumnName">Boolean label column. Default "Label".</param>
    /// <param name="featureColumnName">Feature column (vector of C×H×W, or 1×1×N tabular). Default "Features".</param>
    /// <param name="epochs">Passes over the training data. Default 10.</param>
    /// <param name="batchSize">Rows per mini-batch. Default 128.</param>
    /// <param name="learningRate">Peak learning rate. Default 0.1.</param>
    /// <param name="imageChannels">C. Default 1.</param>
    /// <param name="imageHeight">H. Default 28.</param>
    /// <param name="imageWidth">W. Default 28.</param>
    /// <param name="seed">Seed; default null draws one from the MLContext.</param>
    /// <param name="scoreColumnName">Output score (logit) column. Default "Score".</param>
    /// <param name="probabilityColumnName">Output probability column. Default "Probability".</param>
    /// <param name="predictedLabelColumnName">Output predicted-label column. Default "PredictedLabel".</param>
    /// <exception cref="ArgumentException">An argument is out of range.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(
        this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = BatchNormCnnOptions.DefaultLabelColumnName,
        string featureColumnName = BatchNormCnnOptions.DefaultFeatureColumnName,
        int epochs = Training.TrainerOptions.DefaultEpochs,
        int batchSize = Training.TrainerOptions.DefaultBatchSize,
        double learningRate = Training.TrainerOptions.DefaultLearningRate,
        int imageChannels = Networks.NetworkArchitecture.DefaultInputChannels,
        int imageHeight = Networks.NetworkArchitecture.DefaultInputSize,
        int imageWidth = Networks.NetworkArchitecture.DefaultInputSize,
        int? seed = null,
        string scoreColumnName = BatchNormCnnOptions.DefaultScoreColumnName,
        string probabilityColumnName = BatchNormCnnOptions.DefaultProbabilityColumnName,
        string predictedLabelColumnName = BatchNormCnnOptions.DefaultPredictedLabelColumnName)
    {
        var options = Short(featureColumnName, labelColumnName, scoreColumnName, predictedLabelColumnName, epochs, batchSize, learningRate,
            imageChannels, imageHeight, imageWidth, seed);
        options.ProbabilityColumnName = probabilityColumnName;
        return BatchNormCnn(catalog, options);
    }

    /// <summary>A Batch-Normalized network for binary classification with full settings (see the short overload for the columns).</summary>
    /// <param name="catalog">The binary trainers catalog (<c>mlContext.BinaryClassification.Trainers</c>).</param>
    /// <param name="options">Settings; copied and validated.</param>
    /// <exception cref="ArgumentException">An option is out of range or contradicts another.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, BatchNormCnnOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new BatchNormCnnEstimator(MLNetInternals.GetEnvironment(catalog), options, Networks.NetworkTask.BinaryClassification);
    }

    /// <summary>
    /// A Batch-Normalized network for regression (<c>mlContext.Regression.Trainers</c>): Single label, standardized in
    /// training and unscaled at the output; outputs Score (Single, in the label's units), what
    /// <c>mlContext.Regression.Evaluate</c> reads. Squared-error loss by default, Huber with
    /// <c>options.Trainer.RegressionLoss</c>. For tabular data declare the features 1×1×N (imageChannels 1, imageHeight 1,
    /// imageWidth N) and use the options overload with empty <see cref="BatchNormCnnOptions.ConvStages"/>: each feature is
    /// then standardized on its own.
    /// </summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="labelColumnName">Single label column. Default "Label".</param>
    /// <param name="featureColumnName">Feature column (vector of C×H×W). Default "Features".</param>
    /// <param name="epochs">Passes over the training data. Default 10.</param>
    /// <param name="batchSize">Rows per mini-batch. Default 128.</param>
    /// <param name="learningRate">Peak learning rate. Default 0.1.</param>
    /// <param name="imageChannels">C. Default 1.</param>
    /// <param name="imageHeight">H. Default 28.</param>
    /// <param name="imageWidth">W. Default 28.</param>
    /// <param name="seed">Seed; default null draws one from the MLContext.</param>
    /// <param name="scoreColumnName">Output score column. Default "Score".</param>
    /// <exception cref="ArgumentException">An argument is out of range.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(
        this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = BatchNormCnnOptions.DefaultLabelColumnName,
        string featureColumnName = BatchNormCnnOptions.DefaultFeatureColumnName,
        int epochs = Training.TrainerOptions.DefaultEpochs,
        int batchSize = Training.TrainerOptions.DefaultBatchSize,
        double learningRate = Training.TrainerOptions.DefaultLearningRate,
        int imageChannels = Networks.NetworkArchitecture.DefaultInputChannels,
        int imageHeight = Networks.NetworkArchitecture.DefaultInputSize,
        int imageWidth = Networks.NetworkArchitecture.DefaultInputSize,
        int? seed = null,
        string scoreColumnName = BatchNormCnnOptions.DefaultScoreColumnName) =>
        BatchNormCnn(catalog, Short(featureColumnName, labelColumnName, scoreColumnName, BatchNormCnnOptions.DefaultPredictedLabelColumnName, epochs, batchSize,
            learningRate, imageChannels, imageHeight, imageWidth, seed));

    /// <summary>A Batch-Normalized network for regression with full settings (see the short overload).</summary>
    /// <param name="catalog">The regression trainers catalog (<c>mlContext.Regression.Trainers</c>).</param>
    /// <param name="options">Settings; copied and validated.</param>
    /// <exception cref="ArgumentException">An option is out of range or contradicts another.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(this RegressionCatalog.RegressionTrainers catalog, BatchNormCnnOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new BatchNormCnnEstimator(MLNetInternals.GetEnvironment(catalog), options, Networks.NetworkTask.Regression);
    }

    /// <summary>A Batch-Normalized CNN estimator with full settings (the same as the multiclass trainers catalog's).</summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="options">Settings; copied and validated.</param>
    /// <exception cref="ArgumentException">An option is out of range or contradicts another.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(this TransformsCatalog catalog, BatchNormCnnOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new BatchNormCnnEstimator(MLNetInternals.GetEnvironment(catalog), options);
    }

    /// <summary>A Batch-Normalized CNN estimator with the common settings; everything else as in <see cref="BatchNormCnnOptions"/>.</summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="featureColumnName">Feature column (vector of C×H×W). Default "Features".</param>
    /// <param name="labelColumnName">Key-typed label column. Default "Label".</param>
    /// <param name="scoreColumnName">Output probabilities column. Default "Score".</param>
    /// <param name="predictedLabelColumnName">Output predicted-label column. Default "PredictedLabel".</param>
    /// <param name="epochs">Passes over the training data. Default 10.</param>
    /// <param name="batchSize">Rows per mini-batch. Default 128.</param>
    /// <param name="learningRate">Peak learning rate. Default 0.1.</param>
    /// <param name="imageChannels">C. Default 1.</param>
    /// <param name="imageHeight">H. Default 28.</param>
    /// <param name="imageWidth">W. Default 28.</param>
    /// <param name="seed">Seed; default null draws one from the MLContext.</param>
    /// <exception cref="ArgumentException">An argument is out of range.</exception>
    public static BatchNormCnnEstimator BatchNormCnn(
        this TransformsCatalog catalog,
        string featureColumnName = BatchNormCnnOptions.DefaultFeatureColumnName,
        string labelColumnName = BatchNormCnnOptions.DefaultLabelColumnName,
        string scoreColumnName = BatchNormCnnOptions.DefaultScoreColumnName,
        string predictedLabelColumnName = BatchNormCnnOptions.DefaultPredictedLabelColumnName,
        int epochs = Training.TrainerOptions.DefaultEpochs,
        int batchSize = Training.TrainerOptions.DefaultBatchSize,
        double learningRate = Training.TrainerOptions.DefaultLearningRate,
        int imageChannels = Networks.NetworkArchitecture.DefaultInputChannels,
        int imageHeight = Networks.NetworkArchitecture.DefaultInputSize,
        int imageWidth = Networks.NetworkArchitecture.DefaultInputSize,
        int? seed = null) =>
        BatchNormCnn(catalog, Short(featureColumnName, labelColumnName, scoreColumnName, predictedLabelColumnName, epochs, batchSize, learningRate,
            imageChannels, imageHeight, imageWidth, seed));

    /// <summary>The options of the short overloads: the given settings, everything else the defaults.</summary>
    private static BatchNormCnnOptions Short(
        string featureColumnName, string labelColumnName, string scoreColumnName, string predictedLabelColumnName,
        int epochs, int batchSize, double learningRate, int imageChannels, int imageHeight, int imageWidth, int? seed) => new()
    {
        FeatureColumnName = featureColumnName,
        LabelColumnName = labelColumnName,
        ScoreColumnName = scoreColumnName,
        PredictedLabelColumnName = predictedLabelColumnName,
        Epochs = epochs,
        BatchSize = batchSize,
        LearningRate = learningRate,
        ImageChannels = imageChannels,
        ImageHeight = imageHeight,
        ImageWidth = imageWidth,
        Seed = seed,
    };

    /// <summary>
    /// Makes saved BatchNormCnn models loadable in this context (and, through the process-wide assembly resolver it
    /// installs, in every other context of the process). Needed only in a process that loads a model without having
    /// used any Bn.MLNet type before: the saved model names an emitted loader assembly that only Bn.MLNet can provide.
    /// Idempotent.
    /// </summary>
    /// <param name="catalog">The component catalog (<c>mlContext.ComponentCatalog</c>).</param>
    /// <exception cref="MissingMemberException">This ML.NET version lacks an internal member Bn.MLNet needs (named in the message).</exception>
    public static void RegisterBatchNormCnn(this ComponentCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MLNetInternals.InstallResolver();
        MLNetInternals.Verify();
        MLNetInternals.RegisterInCatalog(catalog, BatchNormCnnTransformer.LoaderSignature);
    }
}
#pragma warning restore RS0026
