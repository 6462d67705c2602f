using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// The loss of each <see cref="NetworkTask"/> on a batch, and its count of correct predictions: softmax cross-entropy
/// (multiclass, with label smoothing), logistic loss on the one logit (binary, with the positive-class weight and label
/// smoothing toward ½), squared error or Huber loss of the standardized residual (regression: (prediction − label) /
/// the label's deviation, so a label in the thousands trains like one near 1; no correct count).
/// </summary>
internal sealed class TaskLoss
{
    private readonly NetworkTask _task;
    private readonly TrainerOptions _o;
    private readonly double _targetStd;

    public TaskLoss(BatchNormCnnNetwork network, TrainerOptions options)
    {
        _task = network.Architecture.Task;
        _o = options;
        _targetStd = network.TargetStd;
    }

    /// <summary>Whether the task counts correct predictions (classification).</summary>
    public bool CountsCorrect => _task != NetworkTask.Regression;

    /// <summary>The loss of <paramref name="output"/> against the batch's labels, with <paramref name="reduction"/>.</summary>
    public Tensor Of(Tensor output, Tensor labels, Tensor targets, nn.Reduction reduction = nn.Reduction.Mean) => _task switch
    {
        NetworkTask.MulticlassClassification => nn.functional.cross_entropy(output, labels, reduction: reduction, label_smoothing: _o.LabelSmoothing),
        NetworkTask.BinaryClassification => Binary(output.squeeze(1), targets, reduction),
        _ => Regression(output.squeeze(1), targets, reduction),
    };

    /// <summary>Correct predictions of the batch (0 for regression).</summary>
    public long Correct(Tensor output, Tensor labels, Tensor targets) => _task switch
    {
        NetworkTask.MulticlassClassification => output.argmax(1).eq(labels).sum().item<long>(),
        NetworkTask.BinaryClassification => output.squeeze(1).gt(0).eq(targets.gt(0.5)).sum().item<long>(),
        _ => 0,
    };

    private Tensor Binary(Tensor logits, Tensor targets, nn.Reduction reduction)
    {
        Tensor t = _o.LabelSmoothing > 0 ? (targets * (1 - _o.LabelSmoothing)) + (_o.LabelSmoothing / 2) : targets;
        Tensor? weight = _o.PositiveClassWeight == 1 ? null : torch.full(1, _o.PositiveClassWeight, device: logits.device);
        return nn.functional.binary_cross_entropy_with_logits(logits, t, reduction: reduction, pos_weights: weight);
    }

    private Tensor Regression(Tensor prediction, Tensor targets, nn.Reduction reduction)
    {
        Tensor residual = (prediction - targets) / _targetStd;
        using Tensor zero = torch.zeros_like(residual);
        return _o.RegressionLoss == RegressionLossKind.Huber
            ? nn.functional.huber_loss(residual, zero, reduction: reduction, delta: _o.HuberDelta)
            : nn.functional.mse_loss(residual, zero, reduction: reduction);
    }
}
