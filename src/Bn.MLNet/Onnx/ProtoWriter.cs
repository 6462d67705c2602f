using Google.Protobuf;

namespace Bn.MLNet.Onnx;

/// <summary>
/// Builds one protobuf message field by field with Google.Protobuf's <see cref="CodedOutputStream"/>. Nested messages
/// are built by their own writer and embedded as length-delimited bytes. Only the wire types ONNX's messages need.
/// </summary>
internal sealed class ProtoWriter
{
    private readonly MemoryStream _buffer = new();
    private readonly CodedOutputStream _output;

    public ProtoWriter()
    {
        _output = new CodedOutputStream(_buffer, leaveOpen: true);
    }

    /// <summary>An int64, int32 or enum field (varint).</summary>
    public ProtoWriter Int64(int field, long value)
    {
        _output.WriteTag(field, WireFormat.WireType.Varint);
        _output.WriteInt64(value);
        return this;
    }

    /// <summary>A float field (fixed32).</summary>
    public ProtoWriter Float(int field, float value)
    {
        _output.WriteTag(field, WireFormat.WireType.Fixed32);
        _output.WriteFloat(value);
        return this;
    }

    /// <summary>A string field (UTF-8, length-delimited).</summary>
    public ProtoWriter String(int field, string value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteString(value);
        return this;
    }

    /// <summary>A bytes field.</summary>
    public ProtoWriter Bytes(int field, byte[] value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        return this;
    }

    /// <summary>An embedded message field.</summary>
    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    /// <summary>A packed repeated int64 field (written even when empty, which readers accept).</summary>
    public ProtoWriter PackedInt64(int field, IReadOnlyCollection<long> values)
    {
        int length = values.Sum(CodedOutputStream.ComputeInt64Size);
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteLength(length);
        foreach (long v in values)
        {
            _output.WriteInt64(v);
        }

        return this;
    }

    /// <summary>The serialized message.</summary>
    public byte[] ToArray()
    {
        _output.Flush();
        return _buffer.ToArray();
    }
}
