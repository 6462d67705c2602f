namespace Bn.MLNet.Training;

/// <summary>
/// Random crop with zero padding (<see cref="TrainerOptions.RandomCropPadding"/>), horizontal flip
/// (<see cref="TrainerOptions.HorizontalFlip"/>) and random erasing (<see cref="TrainerOptions.RandomErasingProbability"/>,
/// applied after the crop and flip), row by row, into one buffer reused for every batch; draws from the epoch's generator
/// (<see cref="StartEpoch"/>: a function of <see cref="TrainerOptions.Seed"/> and the epoch, see <see cref="EpochSeeds"/>).
/// </summary>
internal sealed class BatchAugmenter
{
    /// <summary>Smallest erased area, as a fraction of the image (Zhong et al. 2017).</summary>
    public const double ErasingMinArea = 0.02;

    /// <summary>Largest erased area, as a fraction of the image.</summary>
    public const double ErasingMaxArea = 0.25;

    /// <summary>Smallest height/width ratio of the erased rectangle (the ratio is drawn log-uniformly).</summary>
    public const double ErasingMinAspect = 0.3;

    /// <summary>Largest height/width ratio of the erased rectangle.</summary>
    public const double ErasingMaxAspect = 3.3;

    /// <summary>Draws of a rectangle before an image is left unerased (none fitted inside it).</summary>
    public const int ErasingAttempts = 10;

    private readonly float[] _buffer;
    private Random _random = new(0);
    private readonly int _c, _h, _w, _pad;
    private readonly bool _flip;
    private readonly double _erasing;
    private readonly float[] _fill;

    private BatchAugmenter(TrainerOptions o, int c, int h, int w, float[]? channelMean)
    {
        _buffer = new float[o.BatchSize * c * h * w];
        (_c, _h, _w, _pad, _flip, _erasing) = (c, h, w, o.RandomCropPadding, o.HorizontalFlip, o.RandomErasingProbability);
        _fill = channelMean is { Length: > 0 } mean ? (float[])mean.Clone() : new float[c];
        if (_fill.Length != c)
        {
            throw new ArgumentException($"The erasing fill has {_fill.Length} channel means; the images have {c} channels.", nameof(channelMean));
        }
    }

    /// <summary>
    /// An augmenter for C×H×W images, or null when <paramref name="o"/> asks for no augmentation. Random erasing writes
    /// <paramref name="channelMean"/> (the network's per-channel input mean, so the erased pixels are 0 after the
    /// network's standardization); null or empty writes 0.
    /// </summary>
    public static BatchAugmenter? Create(TrainerOptions o, int c, int h, int w, float[]? channelMean = null) =>
        o.RandomCropPadding > 0 || o.HorizontalFlip || o.RandomErasingProbability > 0 ? new BatchAugmenter(o, c, h, w, channelMean) : null;

    /// <summary>Starts an epoch: its crops, flips and erasing draw from <paramref name="random"/> (see <see cref="EpochSeeds"/>).</summary>
    public void StartEpoch(Random random) => _random = random;

    /// <summary>Augments the first <paramref name="n"/> rows of <paramref name="src"/>; returns the reused buffer holding them.</summary>
    public float[] Apply(float[] src, int n)
    {
        int plane = _h * _w;
        int length = _c * plane;
        for (int r = 0; r < n; r++)
        {
            int dy = _pad > 0 ? _random.Next(-_pad, _pad + 1) : 0;
            int dx = _pad > 0 ? _random.Next(-_pad, _pad + 1) : 0;
            bool mirror = _flip && _random.Next(2) == 1;
            for (int ch = 0; ch < _c; ch++)
            {
                ShiftPlane(src, (r * length) + (ch * plane), dy, dx, mirror);
            }

            if (_erasing > 0 && _random.NextDouble() < _erasing)
            {
                Erase(r * length);
            }
        }

        return _buffer;
    }

    /// <summary>Sets a random rectangle of the image at <paramref name="baseIndex"/> to the channel means, in every channel.</summary>
    private void Erase(int baseIndex)
    {
        if (!TryDrawRectangle(out int top, out int left, out int height, out int width))
        {
            return;
        }

        int plane = _h * _w;
        for (int ch = 0; ch < _c; ch++)
        {
            for (int y = top; y < top + height; y++)
            {
                Array.Fill(_buffer, _fill[ch], baseIndex + (ch * plane) + (y * _w) + left, width);
            }
        }
    }

    /// <summary>
    /// Draws an area in [<see cref="ErasingMinArea"/>, <see cref="ErasingMaxArea"/>] of the image and a log-uniform aspect
    /// ratio in [<see cref="ErasingMinAspect"/>, <see cref="ErasingMaxAspect"/>], then a position fully inside the image;
    /// false when no rounded rectangle fitted (with its area still within the bounds) in <see cref="ErasingAttempts"/> draws.
    /// </summary>
    private bool TryDrawRectangle(out int top, out int left, out int height, out int width)
    {
        double image = (double)_h * _w;
        for (int attempt = 0; attempt < ErasingAttempts; attempt++)
        {
            double area = image * (ErasingMinArea + (_random.NextDouble() * (ErasingMaxArea - ErasingMinArea)));
            double logRatio = Math.Log(ErasingMinAspect) + (_random.NextDouble() * (Math.Log(ErasingMaxAspect) - Math.Log(ErasingMinAspect)));
            double ratio = Math.Exp(logRatio);
            height = (int)Math.Round(Math.Sqrt(area * ratio));
            width = (int)Math.Round(Math.Sqrt(area / ratio));
            double erased = (double)height * width;
            if (height >= 1 && width >= 1 && height <= _h && width <= _w && erased >= image * ErasingMinArea && erased <= image * ErasingMaxArea)
            {
                top = _random.Next(_h - height + 1);
                left = _random.Next(_w - width + 1);
                return true;
            }
        }

        (top, left, height, width) = (0, 0, 0, 0);
        return false;
    }

    private void ShiftPlane(float[] src, int baseIndex, int dy, int dx, bool mirror)
    {
        int h = _h, w = _w;
        for (int y = 0; y < h; y++)
        {
            int sy = y + dy;
            int outRow = baseIndex + (y * w);
            if (sy < 0 || sy >= h)
            {
                Array.Clear(_buffer, outRow, w);
                continue;
            }

            int inRow = baseIndex + (sy * w);
            for (int x = 0; x < w; x++)
            {
                int sx = (mirror ? w - 1 - x : x) + dx;
                _buffer[outRow + x] = sx >= 0 && sx < w ? src[inRow + sx] : 0f;
            }
        }
    }
}
