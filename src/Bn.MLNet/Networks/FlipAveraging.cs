using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Test-time flip averaging, the one rule every scoring path uses: each image is scored as the mean of the softmax
/// probabilities of the image and of its horizontal mirror (the last, width, axis of N×C×H×W reversed). Callers build
/// <see cref="WithMirrors"/> (2N rows: the N images, then their N mirrors), run one eval-mode forward pass over it and
/// reduce the 2N×K logits with <see cref="AverageProbabilities"/>. Eval mode has no batch statistics, so each row's
/// output is the same as when scored alone.
/// </summary>
internal static class FlipAveraging
{
    /// <summary>
    /// Checks that flip averaging makes sense for a C×H×W input: the width must be at least 2 (a width of 1 mirrors
    /// to itself; flat feature vectors are not images).
    /// </summary>
    /// <exception cref="ArgumentException">The width is 1; the message names <paramref name="optionName"/>.</exception>
    public static void RequireImage(int channels, int height, int width, string optionName)
    {
        if (width < 2)
        {
            throw new ArgumentException(
                $"{optionName} needs image input whose width is at least 2 (mirroring reverses the width axis); " +
                $"the input is {channels}×{height}×{width}. Turn the option off for non-image features.", optionName);
        }
    }

    /// <summary>
    /// The N rows of <paramref name="rows"/> (N×C·H·W or N×C×H×W) followed by their horizontal mirrors, as 2N×C×H×W.
    /// </summary>
    public static Tensor WithMirrors(Tensor rows, NetworkArchitecture a)
    {
        Tensor images = rows.reshape(-1, a.InputChannels, a.InputHeight, a.InputWidth);
        return torch.cat(new[] { images, images.flip(3) }, 0);
    }

    /// <summary>
    /// The per-image mean of the softmax probabilities of 2N×K <paramref name="logits"/> laid out as
    /// <see cref="WithMirrors"/> builds them: row i of the N×K result is (softmax(logits[i]) + softmax(logits[N + i])) / 2.
    /// </summary>
    public static Tensor AverageProbabilities(Tensor logits)
    {
        long n = logits.shape[0] / 2;
        Tensor p = torch.nn.functional.softmax(logits, 1);
        return p.narrow(0, 0, n).add(p.narrow(0, n, n)).mul_(0.5);
    }
}
