using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>Batched inference helpers: always eval mode under <c>torch.no_grad()</c>.</summary>
public static class Evaluation
{
    /// <summary>
    /// Mean loss and accuracy of <paramref name="network"/> over one unshuffled pass of <paramref name="source"/>: the
    /// cross-entropy for multiclass classification (a network mapping N×features to N×classes logits), the logistic
    /// loss and the accuracy of the sign for binary classification, the squared residual in units of the label's
    /// deviation for regression (accuracy NaN), as a <see cref="BatchNormCnnNetwork"/>'s task says. The network is put
    /// in eval mode and its previous mode restored after.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="source">The rows to evaluate.</param>
    /// <param name="batchSize">Rows per forward pass. Default 256.</param>
    /// <param name="cancellationToken">Cancels the evaluation.</param>
    /// <param name="testTimeFlipAveraging">Score each image as the mean of the softmax probabilities of the image and of its
    /// horizontal mirror, as <c>BatchNormCnnOptions.TestTimeFlipAveraging</c> does in the transformer; the loss is then the
    /// negative log of the averaged probability of the true class. Needs a multiclass <see cref="BatchNormCnnNetwork"/>
    /// with image input (width at least 2); costs twice the forward passes. Default <see langword="false"/>.</param>
    /// <exception cref="ArgumentException">The source is empty, or flip averaging was asked for a network that is not a
    /// multiclass <see cref="BatchNormCnnNetwork"/> with image input.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static EvaluationResult Evaluate(
        nn.Module<Tensor, Tensor> network, BatchSource source, int batchSize = 256, CancellationToken cancellationToken = default, bool testTimeFlipAveraging = false)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        NetworkArchitecture? flipShape = testTimeFlipAveraging ? FlipArchitecture(network) : null;
        TaskLoss? loss = network is BatchNormCnnNetwork cnn ? new TaskLoss(cnn, new TrainerOptions()) : null;
        Device device = network.parameters().Select(p => p.device).FirstOrDefault() ?? torch.CPU;
        bool wasTraining = network.training;
        network.eval();
        double lossSum = 0;
        long correct = 0, count = 0;
        try
        {
            using var noGrad = torch.no_grad();
            foreach (MiniBatch batch in source.ReadEpoch(batchSize, 0, shuffle: false, cancellationToken))
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = batch.Count;
                if (n == 0)
                    continue;
                using DisposeScope scope = torch.NewDisposeScope();
                Tensor x = torch.tensor(batch.Features, new long[] { n, batch.FeatureLength }, device: device);
                Tensor y = torch.tensor(batch.Labels.AsSpan(0, n).ToArray().Select(l => (long)l).ToArray(), new long[] { n }, device: device);
                Tensor t = torch.tensor(batch.Targets.AsSpan(0, n).ToArray(), new long[] { n }, device: device);
                (double batchLoss, long right) = ScoreBatch(network, x, y, t, loss, flipShape);
                lossSum += batchLoss;
                correct += right;
                count += n;
            }
        }
        finally
        {
            network.train(wasTraining);
        }

        if (count == 0)
            throw new ArgumentException("The evaluation source produced no rows.", nameof(source));
        return new EvaluationResult(lossSum / count, loss is { CountsCorrect: false } ? double.NaN : (double)correct / count, count);
    }

    /// <summary>
    /// Summed loss and correct count of one batch: the task's loss (cross-entropy of the logits for a network of another
    /// type), or with <paramref name="flipShape"/> the negative log of the flip-averaged probability of the true class.
    /// </summary>
    private static (double Loss, long Correct) ScoreBatch(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, Tensor t, TaskLoss? loss, NetworkArchitecture? flipShape)
    {
        if (flipShape is not null)
        {
            Tensor p = FlipAveraging.Average(Forward(network, x), Forward(network, FlipAveraging.Mirror(x, flipShape)));
            return (nn.functional.nll_loss(p.log(), y, reduction: nn.Reduction.Sum).item<float>(), p.argmax(1).eq(y).sum().item<long>());
        }

        Tensor output = Forward(network, x);
        if (loss is null)
            return (nn.functional.cross_entropy(output, y, reduction: nn.Reduction.Sum).item<float>(), output.argmax(1).eq(y).sum().item<long>());
        return (loss.Of(output, y, t, nn.Reduction.Sum).item<float>(), loss.Correct(output, y, t));
    }

    /// <summary>The network's output for <paramref name="x"/>; a <see cref="BatchNormCnnNetwork"/> runs in <see cref="ForwardPasses"/>' passes.</summary>
    private static Tensor Forward(nn.Module<Tensor, Tensor> network, Tensor x)
    {
        if (network is not BatchNormCnnNetwork cnn)
            return network.call(x);
        var passes = ForwardPasses.Split((int)x.shape[0], cnn.Architecture).ToList();
        return passes.Count == 1 ? cnn.call(x) : torch.cat(passes.Select(p => cnn.call(x.narrow(0, p.Start, p.Count))).ToList(), 0);
    }

    /// <summary>The architecture whose image shape flip averaging mirrors; rejects networks it cannot mirror.</summary>
    private static NetworkArchitecture FlipArchitecture(nn.Module<Tensor, Tensor> network)
    {
        if (network is not BatchNormCnnNetwork cnn)
        {
            throw new ArgumentException(
                $"Evaluate's testTimeFlipAveraging needs a BatchNormCnnNetwork (whose architecture gives the image shape); got {network.GetType().Name}.",
                nameof(network));
        }

        NetworkArchitecture a = cnn.Architecture;
        FlipAveraging.RequireImage(a.InputChannels, a.InputHeight, a.InputWidth, "testTimeFlipAveraging");
        if (a.Task != NetworkTask.MulticlassClassification)
            throw new ArgumentException($"Evaluate's testTimeFlipAveraging averages class probabilities: it needs a multiclass network; this one is {a.Task}.", nameof(network));
        return a;
    }
}
