using Bn.MLNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>Batched inference helpers: always eval mode under <c>torch.no_grad()</c>.</summary>
public static class Evaluation
{
    /// <summary>
    /// Mean cross-entropy and accuracy of <paramref name="network"/> (which maps N×features to N×classes logits) over one
    /// unshuffled pass of <paramref name="source"/>. The network is put in eval mode and its previous mode restored after.
    /// </summary>
    /// <exception cref="ArgumentException">The source is empty.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> network, IBatchSource source, int batchSize = 256, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);

        bool wasTraining = network.training;
        network.eval();
        double lossSum = 0;
        long correct = 0, count = 0;
        long[] labels = new long[batchSize];
        try
        {
            using var noGrad = torch.no_grad();
            foreach (MiniBatch batch in source.ReadEpoch(batchSize, 0, shuffle: false, cancellationToken))
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = batch.Count;
                if (n == 0)
                {
                    continue;
                }

                if (labels.Length < n)
                {
                    labels = new long[n];
                }

                for (int i = 0; i < n; i++)
                {
                    labels[i] = batch.Labels[i];
                }

                using DisposeScope scope = torch.NewDisposeScope();
                Tensor x = torch.tensor(batch.Features, new long[] { n, batch.FeatureLength });
                Tensor y = torch.tensor(labels, new long[] { n });
                Tensor logits = network.call(x);
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(y).sum().item<long>();
                count += n;
            }
        }
        finally
        {
            network.train(wasTraining);
        }

        if (count == 0)
        {
            throw new ArgumentException("The evaluation source produced no rows.", nameof(source));
        }

        return new EvaluationResult(lossSum / count, (double)correct / count, count);
    }
}
