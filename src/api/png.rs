//! Greyscale PNG encoding for QR codes, by the `png` crate.

/// Encodes 8-bit grey pixels (row by row) as a PNG.
pub fn grey(width: u32, height: u32, px: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    w.write_image_data(px)?;
    w.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_to_the_same_pixels() {
        let px: Vec<u8> = (0..64u32)
            .map(|i| if i % 3 == 0 { 0 } else { 255 })
            .collect();
        let png = super::grey(8, 8, &px).expect("encode");
        let dec = png::Decoder::new(std::io::Cursor::new(png));
        let mut r = dec.read_info().expect("header");
        let mut buf = vec![0; r.output_buffer_size().expect("size")];
        let info = r.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (8, 8));
        assert_eq!(&buf[..info.buffer_size()], &px[..]);
    }
}
