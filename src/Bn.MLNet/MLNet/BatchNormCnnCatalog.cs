using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Bn.MLNet;

/// <summary>
/// Entry points: <c>mlContext.Transforms.BatchNormCnn(...)</c> and <c>mlContext.ComponentCatalog.RegisterBatchNormCnn()</c>.
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
public static class BatchNormCnnCatalog
{
    /// <summary>A Batch-Normalized CNN estimator with full settings.</summary>
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
        BatchNormCnn(catalog, new BatchNormCnnOptions
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
        });

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
